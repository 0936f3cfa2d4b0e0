"""What an Auth0ClientSecret's status and Events say: status writes, conditions, failures.

Every status write of the engine goes through :meth:`Reporter.patch`: a JSON
merge patch, optionally resourceVersion-checked (a claim or a journal fence),
whose answer updates the caller's copy of the object. A write that nobody else
raced is noted as an echo, so its watch event costs no reconcile.

:meth:`Reporter.fail` is how a reconcile stops on a problem a user (or time)
must fix: ``Ready=False`` with the reason, once per change, an Event, a metric,
and :class:`Stop` with when to look again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, NoReturn

from auth0_rotator.auth0 import Auth0Error
from auth0_rotator.conditions import Condition, find, set_condition
from auth0_rotator.kube import Conflict, KubeStore
from auth0_rotator.metrics import Metrics
from auth0_rotator.model import ClientSecretSpec
from auth0_rotator.schedule import parse_time
from auth0_rotator.settings import EngineSettings

__all__ = ["Reporter", "Stop"]

log = logging.getLogger(__name__)

_FENCE_ATTEMPTS = 5
"""Journal writes retried against a newer version when only the rest of the object changed."""

_DECIDING_METADATA = ("generation", "annotations", "labels", "deletionTimestamp", "uid")
"""Metadata a reconcile decides on; a status write that finds any of it changed is no echo."""


class Stop(Exception):
    """Stop this reconcile (after reporting); look again at ``wake_at`` (``None``: on events)."""

    def __init__(self, wake_at: datetime | None) -> None:
        super().__init__()
        self.wake_at = wake_at


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` after a JSON merge patch (RFC 7386): what the API server should answer."""
    result = dict(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        elif isinstance(value, dict):
            result[key] = _merged({}, value)
        else:
            result[key] = value
    return result


class Reporter:
    """Writes status, conditions and Events of Auth0ClientSecrets."""

    def __init__(
        self, store: KubeStore, settings: EngineSettings, metrics: Metrics | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics

    @property
    def now(self) -> datetime:
        """The engine's clock."""
        return self.settings.clock()

    async def patch(
        self, obj: dict[str, Any], status: dict[str, Any], *, claim: bool = False
    ) -> dict[str, Any]:
        """Merge-patch ``status`` (with ``claim``: only onto the version of ``obj``)."""
        meta = obj["metadata"]
        status = {**status, "observedGeneration": meta.get("generation")}
        updated = await self.store.patch_status(
            meta["namespace"],
            meta["name"],
            status,
            resource_version=meta.get("resourceVersion") if claim else None,
        )
        new_meta = updated["metadata"]
        if all(meta.get(f) == new_meta.get(f) for f in _DECIDING_METADATA) and (
            updated.get("status") or {}
        ) == _merged(obj.get("status") or {}, status):
            # Nobody changed what this reconcile decided on, nor wrote status meanwhile
            # (another process's journal, say): its watch event is an echo.
            self.store.expect_echo(
                "auth0clientsecrets",
                meta["namespace"],
                meta["name"],
                str(new_meta.get("resourceVersion")),
            )
        obj["metadata"] = new_meta
        obj["status"] = updated.get("status") or {}
        return updated

    async def fence(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Write ``status`` only if the journal is still the one this process last saw.

        A journal write is resourceVersion-checked, so a process that lost the
        journal (taken over, closed) stops at its next write. Changes elsewhere
        in the object (a label, an annotation someone set) move the
        resourceVersion too: then the object is read again and, if
        ``status.rotation`` is unchanged, the write is made again against the
        new version. Anything else is :class:`Conflict`.
        """
        for _ in range(_FENCE_ATTEMPTS):
            try:
                return await self.patch(obj, status, claim=True)
            except Conflict:
                meta = obj["metadata"]
                fresh = await self.store.get_client_secret(meta["namespace"], meta["name"])
                mine = (obj.get("status") or {}).get("rotation")
                if fresh is None or (fresh.get("status") or {}).get("rotation") != mine:
                    raise
                obj["metadata"], obj["status"] = fresh["metadata"], fresh.get("status") or {}
        return await self.patch(obj, status, claim=True)

    def conditions(self, obj: dict[str, Any], *updates: Condition) -> list[dict[str, Any]]:
        """The object's conditions with ``updates`` applied (for a status write)."""
        conditions = list((obj.get("status") or {}).get("conditions") or [])
        generation = obj["metadata"].get("generation")
        for update in updates:
            conditions = set_condition(conditions, update, self.now, generation)
        return conditions

    async def event(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        """Post an Event about ``obj`` (in the background, best effort)."""
        await self.store.post_event(obj, kind, reason, message, self.now)

    async def fail(
        self,
        obj: dict[str, Any],
        reason: str,
        message: str,
        *,
        retry: bool,
        event: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> NoReturn:
        """Report Ready=False with ``reason`` (once per change) and stop this reconcile."""
        old = find((obj.get("status") or {}).get("conditions"), "Ready")
        same = old.get("reason") == reason and old.get("message") == message
        if not same or extra:
            conditions = self.conditions(obj, ("Ready", "False", reason, message))
            await self.patch(obj, {"conditions": conditions, **(extra or {})})
            if event and not same:
                await self.event(obj, "Warning", reason, message)
        if not same:
            log.warning("Ready=False, %s: %s", reason, message)
            if self.metrics is not None:
                journal = (obj.get("status") or {}).get("rotation") or {}
                self.metrics.failed(reason, journal.get("trigger"))
        wait = self.settings.retry_after if retry else self.settings.recheck_after
        raise Stop(self.now + wait)

    async def auth0_failure(self, obj: dict[str, Any], exc: Auth0Error) -> NoReturn:
        """Report an Auth0 error under its own reason; retried sooner if it is transient."""
        await self.fail(obj, exc.reason, exc.message, retry=exc.retryable)

    @staticmethod
    def next_wake(spec: ClientSecretSpec, status: dict[str, Any]) -> datetime | None:
        """The next scheduled rotation, when there is a schedule."""
        return parse_time(status.get("nextRotationTime")) if spec.schedule else None
