"""Auth0-side targets: an Action's secret, a rules-config value, a client's metadata key.

Each write keeps what else is there (the Action's other secrets, the client's
other metadata keys) and is idempotent. Values that do not fit Auth0's limits
are refused before anything is sent, never truncated.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from auth0_rotator.auth0._answers import json_object
from auth0_rotator.auth0._errors import InvalidRequest
from auth0_rotator.auth0._paths import path_segment as _path
from auth0_rotator.auth0._transport import Answer
from auth0_rotator.secretvalue import SecretValue

__all__ = ["Request", "set_action_secret", "set_client_metadata", "set_rules_config"]

_METADATA_VALUE_MAX = 255
_METADATA_KEYS_MAX = 10


class Request(Protocol):
    """The client's Management API request (retries, token, budget, errors)."""

    def __call__(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        client_id: str,
        idempotent: bool,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        subject: str | None = None,
    ) -> Awaitable[Answer]: ...


async def set_action_secret(
    request: Request, action_id: str, name: str, value: SecretValue
) -> None:
    """Set secret ``name`` of an Action, keep its other secrets, then deploy it.

    The Management API replaces an Action's whole secrets list and never
    returns values, so the other secrets are sent back by name only (Auth0
    keeps their values). Needs ``read:actions``, ``update:actions`` and
    ``create:actions``; repeating it is harmless (one more deployed version).
    """
    subject = f"action {action_id}"
    path = f"/api/v2/actions/actions/{_path(action_id)}"
    action = json_object(
        await request(
            "GET", path, endpoint="get-action", client_id="", subject=subject, idempotent=True
        )
    )
    others = [
        {"name": str(s["name"])}
        for s in action.get("secrets") or []
        if isinstance(s, dict) and s.get("name") and s.get("name") != name
    ]
    await request(
        "PATCH",
        path,
        endpoint="patch-action",
        client_id="",
        subject=subject,
        json={"secrets": [*others, {"name": name, "value": value.reveal()}]},
        idempotent=True,
    )
    await request(
        "POST",
        f"{path}/deploy",
        endpoint="deploy-action",
        client_id="",
        subject=subject,
        idempotent=True,
    )


async def set_rules_config(request: Request, key: str, value: SecretValue) -> None:
    """Set the rules configuration value ``key`` (needs ``update:rules_configs``)."""
    await request(
        "PUT",
        f"/api/v2/rules-configs/{_path(key)}",
        endpoint="put-rules-config",
        client_id="",
        subject=f"rules config {key}",
        json={"value": value.reveal()},
        idempotent=True,
    )


async def set_client_metadata(
    request: Request, client_id: str, key: str, value: SecretValue
) -> None:
    """Set ``client_metadata[key]`` of an application, keeping its other keys.

    Reads the metadata first and sends it back whole, so it works whether
    Auth0 merges or replaces it. Auth0 allows 10 keys and 255 characters per
    value; a value or key that does not fit raises :class:`InvalidRequest`
    before anything is sent, never a truncated value. Needs ``read:clients``
    and ``update:clients``.
    """
    subject = f"client_metadata of client {client_id}"
    if len(value.reveal()) > _METADATA_VALUE_MAX:
        raise InvalidRequest(
            f"the secret ({len(value.reveal())} characters) does not fit in {subject}: Auth0 "
            f"allows {_METADATA_VALUE_MAX} characters per value; use another target"
        )
    path = f"/api/v2/clients/{_path(client_id)}"
    current = json_object(
        await request(
            "GET",
            path,
            endpoint="get-client-metadata",
            client_id=client_id,
            subject=subject,
            params={"fields": "client_metadata", "include_fields": "true"},
            idempotent=True,
        )
    ).get("client_metadata")
    metadata = dict(current) if isinstance(current, dict) else {}
    metadata[key] = value.reveal()
    if len(metadata) > _METADATA_KEYS_MAX:
        raise InvalidRequest(
            f"{subject} already has {_METADATA_KEYS_MAX} keys, Auth0's limit: remove one or "
            f"use a key that exists"
        )
    await request(
        "PATCH",
        path,
        endpoint="patch-client-metadata",
        client_id=client_id,
        subject=subject,
        json={"client_metadata": metadata},
        idempotent=True,
    )
