"""Bounded work in the work queue: reconcile deadlines, stuck reconciles, fair shares."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from auth0_rotator import controller as controller_module
from auth0_rotator.controller import Controller
from auth0_rotator.schedule import SystemClock


async def test_a_reconcile_past_its_deadline_is_cancelled_and_retried() -> None:
    calls: list[str] = []

    async def reconcile(namespace: str, name: str, seen: object) -> datetime | None:
        calls.append(name)
        if len(calls) == 1:
            await asyncio.sleep(60)  # hangs, as on an endpoint that never answers
        return None

    controller = Controller(reconcile, SystemClock(), workers=1, deadline=0.1)
    await controller.start()
    try:
        controller.enqueue(("ns", "app"))
        while controller.reconciles < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        assert controller._failures[("ns", "app")] == 1  # counted as a failure: backoff
        assert ("ns", "app") in controller._due  # and retried later
    finally:
        await controller.stop()


async def test_a_reconcile_that_ignores_its_cancellation_is_reported_stuck(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(controller_module, "STUCK_GRACE", 0.1)
    release = asyncio.Event()

    async def reconcile(namespace: str, name: str, seen: object) -> datetime | None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue  # a reconcile that will not stop (a bug, or a blocked call)
        return None

    controller = Controller(reconcile, SystemClock(), workers=1, deadline=0.1)
    await controller.start()
    try:
        controller.enqueue(("ns", "stuck"))
        await asyncio.sleep(0.5)
        assert controller.stuck == [("ns", "stuck")]
        release.set()
        await asyncio.sleep(0.2)
        assert controller.stuck == []
    finally:
        await controller.stop()


async def test_one_partition_takes_at_most_half_the_workers() -> None:
    running: dict[str, int] = {"slow": 0, "fast": 0}
    most = {"slow": 0}
    fast_done: list[str] = []
    release = asyncio.Event()

    async def reconcile(namespace: str, name: str, seen: object) -> datetime | None:
        running[namespace] += 1
        most["slow"] = max(most["slow"], running["slow"])
        if namespace == "slow":
            await release.wait()
        else:
            fast_done.append(name)
        running[namespace] -= 1
        return None

    controller = Controller(reconcile, SystemClock(), workers=4, partition=lambda key: key[0])
    await controller.start()
    try:
        for n in range(10):
            controller.enqueue(("slow", f"s{n}"))
        for n in range(5):
            controller.enqueue(("fast", f"f{n}"))
        for _ in range(100):
            if len(fast_done) == 5:
                break
            await asyncio.sleep(0.01)
        # The slow partition holds two workers; the other keys went through meanwhile.
        assert len(fast_done) == 5 and most["slow"] == 2
        assert controller.queued == 8  # the slow keys wait aside, still queued
        release.set()
        while controller.reconciles < 15:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        assert most["slow"] == 2 and controller.queued == 0
    finally:
        await controller.stop()


async def test_a_parked_key_is_not_overtaken_by_busier_keys_of_its_partition() -> None:
    runs: list[str] = []
    controller: Controller | None = None

    async def reconcile(namespace: str, name: str, seen: object) -> datetime | None:
        runs.append(name)
        await asyncio.sleep(0.01)
        if name != "quiet" and controller is not None and len(runs) < 200:
            controller.enqueue((namespace, name))  # always changed again meanwhile
        return None

    controller = Controller(reconcile, SystemClock(), workers=4, partition=lambda key: key[0])
    await controller.start()
    try:
        for name in ("busy-1", "busy-2", "quiet"):
            controller.enqueue(("tenant", name))
        for _ in range(300):
            if "quiet" in runs:
                break
            await asyncio.sleep(0.01)
        # Two busy keys hold the partition's share; the parked one gets the next slot.
        assert "quiet" in runs[:4], runs[:10]
    finally:
        await controller.stop()
