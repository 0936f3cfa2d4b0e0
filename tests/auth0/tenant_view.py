"""Reading the fake tenant's state through its control API, for assertions."""

from __future__ import annotations

from typing import Any

import httpx


async def calls(control: httpx.AsyncClient, endpoint: str | None = None) -> list[dict[str, Any]]:
    """The fake's call log, optionally only one endpoint's entries."""
    log: list[dict[str, Any]] = (await control.get("/_fake/calls")).json()
    return [c for c in log if endpoint is None or c["endpoint"] == endpoint]


async def secret_of(control: httpx.AsyncClient, client_id: str) -> str:
    """The fake's current secret for ``client_id`` (control API)."""
    value: str = (await control.get(f"/_fake/clients/{client_id}")).json()["client_secret"]
    return value
