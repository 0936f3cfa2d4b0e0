"""A tenant's users are reconciled when its spec or readiness changes, not on other writes."""

from __future__ import annotations

from typing import Any, cast

from auth0_rotator.controller import Controller
from auth0_rotator.handlers import OperatorContext, _tenant_event
from auth0_rotator.kube import KubeStore
from auth0_rotator.model import TenantRef
from auth0_rotator.tenants import TenantProblem, TenantRegistry

REF = TenantRef("Auth0Tenant", "default", "ns")


class _Queue:
    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []

    def enqueue(self, key: tuple[str, str], echo: object = None) -> None:
        self.keys.append(key)


class _Tenants:
    async def client(self, tenant: object) -> None:
        raise TenantProblem("CredentialsNotFound", "no credentials")

    def observe(self, ref: TenantRef, body: dict[str, Any]) -> None:
        pass

    def forget(self, ref: TenantRef) -> None:
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
    ctx = OperatorContext(
        controller=cast(Controller, queue),
        tenants=cast(TenantRegistry, _Tenants()),
        store=cast(KubeStore, _Store()),
    )
    ctx.tenant_users[REF.key] = {("ns", "a"), ("ns", "b")}

    async def event(kind: str | None, body: dict[str, Any]) -> int:
        before = len(queue.keys)
        await _tenant_event(REF, cast(str, kind), body, ctx)
        return len(queue.keys) - before

    assert await event(None, _body(1, "False")) == 2  # listed at start
    assert await event("MODIFIED", _body(1, "False", tokenExpiresAt=None)) == 0  # status only
    assert await event("MODIFIED", _body(2, "False")) == 2  # the spec changed
    assert await event("MODIFIED", _body(2, "True")) == 2  # it became Ready
    assert await event("DELETED", _body(2, "True")) == 2
