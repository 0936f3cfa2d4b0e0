"""Log lines that say which resource and which rotation they are about.

The controller sets :data:`resource` around each reconcile and the engine sets
:data:`rotation` while a rotation journal is open. Both are context variables,
so every line logged in that task (the engine's, the Auth0 client's, httpx's)
carries them without being passed around. kopf's own per-object lines carry
the same fields from kopf's ``k8s_ref``.

Two formats (``--log-format``):

- ``human``: ``2026-11-29 10:00:00,123 INFO auth0_rotator.engine [ns/name rotation=ID] message``
- ``json``: one object per line with ``time``, ``level``, ``logger``, ``message``,
  and when known ``namespace``, ``name``, ``kind``, ``rotation_id``, ``exception``.

Neither ever adds a secret: the fields are names and ids only.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "HumanFormatter",
    "JsonFormatter",
    "ResourceContext",
    "configure_logging",
    "resource",
    "rotation",
]

resource: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "auth0_rotator_resource", default=None
)
"""(namespace, name) of the Auth0ClientSecret being reconciled in this task."""

rotation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "auth0_rotator_rotation", default=None
)
"""Id of the rotation journal being worked on in this task."""


class ResourceContext(logging.Filter):
    """Adds ``namespace``, ``name``, ``kind`` and ``rotation_id`` to records (never drops any)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the fields of the current task (kopf's object reference wins)."""
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict) and ref.get("name"):
            record.a0_namespace = ref.get("namespace")
            record.a0_name = ref.get("name")
            record.a0_kind = ref.get("kind")
        else:
            current = resource.get()
            if current is not None:
                record.a0_namespace, record.a0_name = current
                record.a0_kind = "Auth0ClientSecret"
        if not hasattr(record, "a0_rotation"):
            record.a0_rotation = rotation.get()
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {
        "namespace": getattr(record, "a0_namespace", None),
        "name": getattr(record, "a0_name", None),
        "kind": getattr(record, "a0_kind", None),
        "rotation_id": getattr(record, "a0_rotation", None),
    }
    return {k: v for k, v in fields.items() if v}


class HumanFormatter(logging.Formatter):
    """``time LEVEL logger [namespace/name rotation=id] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line, with the resource prefix before the message."""
        fields = _fields(record)
        if "name" in fields:
            where = "/".join(x for x in (fields.get("namespace"), fields["name"]) if x)
            if "rotation_id" in fields:
                where += f" rotation={fields['rotation_id']}"
            record = logging.makeLogRecord(record.__dict__)  # other handlers keep the original
            record.msg, record.args = f"[{where}] {record.getMessage()}", None
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; keys are stable for log pipelines."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(log_format: str, verbose: bool) -> None:
    """Root handler with the chosen format; kopf's own handler is replaced.

    Library chatter (httpx request lines, asyncio) stays at WARNING unless verbose.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else HumanFormatter())
    handler.addFilter(ResourceContext())
    handler.set_name("auth0-rotator")
    root = logging.getLogger()
    root.handlers[:] = [
        h
        for h in root.handlers
        if h.get_name() != "auth0-rotator" and type(h).__name__ != "_KopfStreamHandler"
    ]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore", "asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
