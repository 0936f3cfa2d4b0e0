"""Bodies from watch events save reads: the controller's queued bodies, the tenant registry's.

A reconcile starts from the resource as its latest watch event showed it,
never from an older one: an echo drops what was kept, and nothing outlives
the reconcile it was kept for. Tenants resolve from their latest event.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from auth0_rotator import controller as controller_module
from auth0_rotator.controller import Controller
from auth0_rotator.model import ClientSecretSpec, TenantRef
from auth0_rotator.schedule import SystemClock
from auth0_rotator.tenants import TenantProblem, TenantRegistry

KEY = ("ns", "app")


def _body(version: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "app", "resourceVersion": version}}


class Recorder:
    """A reconcile that records what it was given and can be held while running."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any] | None] = []
        self.versions: list[str | None] = []
        """The resourceVersion each reconcile was given (``None``: no body, so it reads)."""
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()

    async def __call__(self, namespace: str, name: str, seen: dict[str, Any] | None) -> None:
        self.seen.append(seen)
        self.versions.append(None if seen is None else seen["metadata"]["resourceVersion"])
        self.started.set()
        await self.release.wait()
        if seen is not None:
            seen["metadata"]["resourceVersion"] = "changed by the reconcile"


async def _settle(controller: Controller, runs: int) -> None:
    while controller.reconciles < runs or controller.queued:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def test_a_reconcile_gets_a_copy_of_the_latest_body_of_its_key() -> None:
    reconcile = Recorder()
    controller = Controller(reconcile, SystemClock(), workers=1)
    older, newer = _body("1"), _body("2")
    controller.enqueue(KEY, seen=older)
    controller.enqueue(KEY, seen=newer)
    await controller.start()
    try:
        await _settle(controller, 1)
    finally:
        await controller.stop()
    assert reconcile.versions == ["2"]
    # The reconcile changed its copy, not the event's body.
    assert reconcile.seen[0] is not newer
    assert newer["metadata"]["resourceVersion"] == "2"


async def test_an_echo_drops_the_body_kept_for_a_queued_key() -> None:
    reconcile = Recorder()
    controller = Controller(reconcile, SystemClock(), workers=1)
    controller.enqueue(KEY, seen=_body("1"))
    # Our own write of version 2: the kept version 1 is older than the object now.
    controller.enqueue(KEY, echo=lambda: True, seen=_body("2"))
    await controller.start()
    try:
        await _settle(controller, 1)
    finally:
        await controller.stop()
    assert reconcile.versions == [None]  # read afresh


async def _during_a_reconcile(*events: tuple[bool, str], later: bool = False) -> list[str | None]:
    """The versions each reconcile was given.

    Version "1" is queued; ``events`` (echo?, version) arrive while it runs; with
    ``later``, one more plain enqueue (a due time, say) follows.
    """
    reconcile = Recorder()
    reconcile.release.clear()
    controller = Controller(reconcile, SystemClock(), workers=1)
    await controller.start()
    try:
        controller.enqueue(KEY, seen=_body("1"))
        await reconcile.started.wait()
        runs = 1
        for echo, version in events:
            controller.enqueue(KEY, echo=functools.partial(bool, echo), seen=_body(version))
            runs = runs if echo else 2
        reconcile.release.set()
        await _settle(controller, runs)
        if later:
            controller.enqueue(KEY)
            await _settle(controller, runs + 1)
    finally:
        await controller.stop()
    return reconcile.versions


async def test_a_change_during_a_reconcile_reruns_it_with_the_latest_body() -> None:
    # Someone else's change, then our own write: the rerun starts from the latest
    # event (our write's), not from "3".
    assert await _during_a_reconcile((False, "3"), (True, "4")) == ["1", "4"]


async def test_no_body_outlives_its_reconcile() -> None:
    # Only an echo while it runs: no rerun, and its body is not kept for later.
    assert await _during_a_reconcile((True, "2"), later=True) == ["1", None]


async def test_bodies_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controller_module, "_SEEN_KEPT", 2)
    reconcile = Recorder()
    controller = Controller(reconcile, SystemClock(), workers=1)
    for i in range(4):
        controller.enqueue(("ns", f"app-{i}"), seen=_body(str(i)))
    await controller.start()
    try:
        await _settle(controller, 4)
    finally:
        await controller.stop()
    assert reconcile.versions == ["0", "1", None, None]


# -- tenants ---------------------------------------------------------------------------


TENANT: dict[str, Any] = {
    "apiVersion": "auth0rotator.dev/v1alpha1",
    "kind": "Auth0Tenant",
    "metadata": {"namespace": "ns", "name": "default", "generation": 1},
    "spec": {
        "domain": "example.auth0.com",
        "credentials": {"secretRef": {"name": "creds"}},
        "allowedClientIds": ["app-1"],
    },
}


class TenantReads:
    """Stands in for KubeStore.get_tenant: counts reads."""

    def __init__(self, body: dict[str, Any] | None) -> None:
        self.body = body
        self.reads = 0

    async def get_tenant(self, ref: TenantRef) -> dict[str, Any] | None:
        self.reads += 1
        return self.body


def _spec(client_id: str) -> ClientSecretSpec:
    return ClientSecretSpec.parse(
        {
            "metadata": {"namespace": "ns", "name": "app", "uid": "u", "generation": 1},
            "spec": {"clientId": client_id, "secretName": "app"},
        }
    )


async def test_a_tenant_seen_on_the_watch_is_not_read_again_until_forgotten() -> None:
    store = TenantReads(TENANT)
    tenants = TenantRegistry(store)
    ref = TenantRef("Auth0Tenant", "default", "ns")
    assert (await tenants.resolve(_spec("app-1"))).domain == "example.auth0.com"
    assert store.reads == 1

    tenants.observe(ref, TENANT)
    await tenants.resolve(_spec("app-1"))
    assert store.reads == 1

    # The watch's latest body rules: a client no longer allowed is refused at once.
    narrowed = {**TENANT, "spec": {**TENANT["spec"], "allowedClientIds": ["app-2"]}}
    tenants.observe(ref, narrowed)
    with pytest.raises(TenantProblem) as refused:
        await tenants.resolve(_spec("app-1"))
    assert refused.value.reason == "ClientNotAllowed"
    assert store.reads == 1

    await tenants.forget(ref)  # deleted: read again (and not found)
    store.body = None
    with pytest.raises(TenantProblem) as missing:
        await tenants.resolve(_spec("app-1"))
    assert missing.value.reason == "TenantNotFound"
    assert store.reads == 2
