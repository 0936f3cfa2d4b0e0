"""KubeStore's background Event sink: in order, never blocking, flushed on close."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.aio import client

from auth0_rotator.kube import KubeStore
from auth0_rotator.kube import _events as kube_events

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


class RecordingCore(SlowCore):
    """Also records patches (aggregated repeats) and the names Events were created with."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []

    async def create_namespaced_event(self, namespace: str, body: dict[str, Any]) -> None:
        self.names.append(body["metadata"]["name"])
        await super().create_namespaced_event(namespace, body)

    async def patch_namespaced_event(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        self.patches.append((name, body))


async def test_a_repeated_event_is_counted_on_the_first_one_within_the_window() -> None:
    core = RecordingCore()
    store = _store(core)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for minutes in (0, 1, 2):
        await store.post_event(
            OBJ, "Warning", "RateLimited", "429", start + timedelta(minutes=minutes)
        )
    await store.post_event(OBJ, "Warning", "RateLimited", "other text", start)
    await store.post_event(OBJ, "Warning", "RateLimited", "429", start + timedelta(minutes=30))
    await store.aclose()

    assert len(core.names) == 3, "first, a different message, and one after the window"
    first = core.names[0]
    assert core.patches == [
        (first, {"count": 2, "lastTimestamp": "2026-01-01T00:01:00Z"}),
        (first, {"count": 3, "lastTimestamp": "2026-01-01T00:02:00Z"}),
    ]
    await store.api.close()


async def test_event_names_sort_in_posting_order_even_within_one_instant() -> None:
    core = RecordingCore()
    store = _store(core)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for reason in ("RotationStarted", "Rotated", "Restarted", "RolloutComplete"):
        await store.post_event(OBJ, "Normal", reason, reason, now)
    await store.aclose()
    suffixes = [int(name.rsplit(".", 1)[1], 16) for name in core.names]
    assert suffixes == sorted(suffixes) and len(set(suffixes)) == 4
    assert all(name.startswith("app.") for name in core.names)
    await store.api.close()


async def test_events_wait_while_a_rotation_holds_them_but_not_for_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    core = SlowCore()
    store = _store(core)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with store.holding_events():
        await store.post_event(OBJ, "Normal", "RotationStarted", "m", now)
        await asyncio.sleep(0.1)
        assert core.posted == []  # the rotation's own API calls go first
    await asyncio.sleep(0.1)
    assert core.posted == [("ns", "RotationStarted")]

    monkeypatch.setattr(kube_events, "_EVENT_HOLD", 0.05)
    with store.holding_events():
        await store.post_event(OBJ, "Normal", "Rotated", "m", now)
        for _ in range(500):
            if core.posted[-1] == ("ns", "Rotated"):
                break
            await asyncio.sleep(0.01)
        # Held too long (a slow verification, say): posted while still held.
        assert core.posted[-1] == ("ns", "Rotated")
    await store.aclose()
    await store.api.close()
