"""KubeStore's background Event sink: in order, never blocking, flushed on close."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from kubernetes.aio import client

from auth0_rotator.kube import KubeStore

OBJ = {
    "apiVersion": "auth0rotator.dev/v1alpha1",
    "kind": "Auth0ClientSecret",
    "metadata": {"name": "app", "namespace": "ns", "uid": "u1"},
}


class SlowCore:
    """Stands in for CoreV1Api: records Events after a delay, fails on request."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.posted: list[tuple[str, str]] = []
        self.fail = fail or set()

    async def create_namespaced_event(self, namespace: str, body: dict[str, Any]) -> None:
        await asyncio.sleep(0.01)
        if body["reason"] in self.fail:
            raise client.ApiException(status=500)
        self.posted.append((namespace, body["reason"]))


def _store(core: SlowCore) -> KubeStore:
    store = KubeStore(client.ApiClient())
    store.core = core
    return store


async def test_events_are_posted_in_order_without_waiting_for_the_api() -> None:
    core = SlowCore()
    store = _store(core)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for reason in ("RotationStarted", "Rotated", "Restarted", "RolloutComplete"):
        await store.post_event(OBJ, "Normal", reason, "m", now)
    # Queued, not awaited: nothing has reached the API yet.
    assert core.posted == []
    await store.aclose()
    assert core.posted == [
        ("ns", "RotationStarted"),
        ("ns", "Rotated"),
        ("ns", "Restarted"),
        ("ns", "RolloutComplete"),
    ]
    await store.api.close()


async def test_a_failed_event_does_not_stop_the_ones_after_it() -> None:
    core = SlowCore(fail={"Rotated"})
    store = _store(core)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for reason in ("RotationStarted", "Rotated", "Restarted"):
        await store.post_event(OBJ, "Normal", reason, "m", now)
    await store.aclose()
    assert [r for _, r in core.posted] == ["RotationStarted", "Restarted"]
    await store.api.close()
