"""A tenant's users are reconciled when its spec or readiness changes, not on other writes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

from auth0_rotator.kube import KubeStore
from auth0_rotator.model import TenantRef
from auth0_rotator.schedule import SystemClock
from auth0_rotator.tenant_status import TenantStatus
from auth0_rotator.tenants import TenantProblem, TenantRegistry

REF = TenantRef("Auth0Tenant", "default", "ns")


class _Queue:
    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []

    def enqueue(self, key: tuple[str, str], echo: object = None) -> None:
        self.keys.append(key)


class _Tenants:
    @contextlib.asynccontextmanager
    async def connect(self, tenant: object) -> AsyncIterator[None]:
        if tenant is not None:
            raise TenantProblem("CredentialsNotFound", "no credentials")
        yield

    def observe(self, ref: TenantRef, body: dict[str, Any]) -> None:
        pass

    async def forget(self, ref: TenantRef) -> None:
        pass


class _Store:
    async def patch_tenant_status(self, ref: TenantRef, status: dict[str, Any]) -> None:
        pass


def _body(generation: int, ready: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "default", "namespace": "ns", "generation": generation},
        "spec": {"domain": "tenant.example.com", "credentials": {"secretRef": {"name": "c"}}},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "CredentialsNotFound",
                    "message": "no credentials",
                }
            ],
            **status,
        },
    }


async def test_users_follow_spec_and_readiness_changes_only() -> None:
    queue = _Queue()
    status = TenantStatus(
        cast(TenantRegistry, _Tenants()),
        cast(KubeStore, _Store()),
        SystemClock(),
        queue.enqueue,
    )
    status.use(REF.key, ("ns", "a"))
    status.use(REF.key, ("ns", "b"))

    async def event(kind: str | None, body: dict[str, Any]) -> int:
        before = len(queue.keys)
        await status.on_event(REF, cast(str, kind), body)
        return len(queue.keys) - before

    assert await event(None, _body(1, "False")) == 2  # listed at start
    assert await event("MODIFIED", _body(1, "False", tokenExpiresAt=None)) == 0  # status only
    assert await event("MODIFIED", _body(2, "False")) == 2  # the spec changed
    assert await event("MODIFIED", _body(2, "True")) == 2  # it became Ready
    assert await event("DELETED", _body(2, "True")) == 2
