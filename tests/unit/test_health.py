"""The liveness probe reports the real health of the role a process plays."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from auth0_rotator.handlers import OperatorContext
from auth0_rotator.runtime import _Status


@dataclass
class FakeController:
    alive: bool = True
    stuck: list[tuple[str, str]] = field(default_factory=list)


def _streams(*plurals: str) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(asyncio.sleep(60), name=f"watcher for {plural}.v1.example@ns")
        for plural in plurals
    ]


async def _leader(patterns: bool = False) -> tuple[_Status, asyncio.Task[None]]:
    context = OperatorContext()
    context.controller = FakeController()  # type: ignore[assignment]
    status = _Status(context, patterns=patterns)
    runtime = asyncio.create_task(asyncio.sleep(60))
    status.lead(runtime)
    status.leading_since -= 3600  # past the grace period for opening streams
    return status, runtime


async def test_a_leader_with_every_watch_stream_is_alive() -> None:
    status, runtime = await _leader()
    tasks = _streams("auth0clientsecrets", "auth0tenants", "clusterauth0tenants", "secrets")
    alive, details = status.health()
    assert alive and details == {"role": "leader", "watchStreams": 4}

    tasks[-1].cancel()  # the Secrets stream died
    await asyncio.sleep(0)
    alive, details = status.health()
    assert not alive and details["problem"] == "no watch stream for secrets"
    for task in [*tasks, runtime]:
        task.cancel()


async def test_a_leader_whose_work_queue_or_runtime_stopped_is_dead() -> None:
    status, runtime = await _leader()
    tasks = _streams("auth0clientsecrets", "auth0tenants", "clusterauth0tenants", "secrets")
    controller: Any = status.context.controller
    controller.alive = False
    assert status.health() == (
        False,
        {"role": "leader", "watchStreams": 4, "problem": "work queue stopped"},
    )
    runtime.cancel()
    await asyncio.sleep(0)
    alive, details = status.health()
    assert not alive and details["problem"] == "leader task ended"
    for task in tasks:
        task.cancel()


async def test_with_namespace_patterns_only_the_cluster_stream_is_required() -> None:
    status, runtime = await _leader(patterns=True)
    tasks = _streams("clusterauth0tenants")
    assert status.health()[0]
    tasks[0].cancel()
    await asyncio.sleep(0)
    assert not status.health()[0]
    runtime.cancel()


async def test_a_new_leader_gets_a_grace_period_and_a_standby_needs_no_streams() -> None:
    context = OperatorContext()
    status = _Status(context, patterns=False)
    assert status.health() == (True, {"role": "starting"})
    status.role = "standby"
    status.task = asyncio.create_task(asyncio.sleep(60))
    assert status.health() == (True, {"role": "standby"})
    status.task.cancel()
    await asyncio.sleep(0)
    assert status.health() == (False, {"role": "standby", "problem": "standby task ended"})
    runtime = asyncio.create_task(asyncio.sleep(60))
    status.lead(runtime)
    assert status.health() == (True, {"role": "leader", "watchStreams": 0})
    runtime.cancel()


async def test_a_leader_with_a_reconcile_stuck_past_its_deadline_is_dead() -> None:
    status, runtime = await _leader()
    tasks = _streams("auth0clientsecrets", "auth0tenants", "clusterauth0tenants", "secrets")
    controller: Any = status.context.controller
    controller.stuck = [("team-a", "app")]
    alive, details = status.health()
    assert not alive
    assert details["problem"] == "reconciles stuck past their deadline: team-a/app"
    for task in [*tasks, runtime]:
        task.cancel()
