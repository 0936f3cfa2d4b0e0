"""Phases that wait for the restart targets' rollout before the rotation goes on.

``KeyPair`` retires the old key only once every restart target runs the new
one; an announced ``Generate`` changes Auth0 only once every target runs with
the next secret. Both hold their journal open in a phase and call
:func:`wait_for_rollout` on each reconcile: it restarts what still needs it,
reports the rollout (``RolloutComplete``), and either returns (complete, and
any ``hold`` after it has passed) or says in the ``Rotating`` condition what
the rotation waits for and stops until the next look (the workloads' watch
events wake it earlier).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NoReturn

from auth0_rotator.conditions import find
from auth0_rotator.reporting import Stop
from auth0_rotator.restarting import RolloutReport
from auth0_rotator.rotation.strategy import Rotation, Services
from auth0_rotator.schedule import format_time, parse_time

__all__ = ["wait_for_rollout"]


async def wait_for_rollout(
    rotation: Rotation,
    services: Services,
    *,
    waiting: str,
    hold: timedelta = timedelta(0),
    hold_reason: str = "",
) -> None:
    """Return once the rollout of ``status.restartRevision`` is complete and ``hold`` passed.

    ``waiting`` says what is held back meanwhile (the ``Rotating`` message);
    without restart targets the hold counts from the last Secret write.
    """
    obj = rotation.obj
    report = await services.restarter.progress(obj, rotation.spec)
    if report is not None and report.condition[1] != "True":
        await _waiting(rotation, services, f"{waiting}: {report.condition[3]}", report.wake)
    if hold:
        done_at = _rolled_out_at(obj.get("status") or {}, report) or services.now
        until = done_at + hold
        if services.now < until:
            why = f"{waiting}: {hold_reason} until {format_time(until)}"
            await _waiting(rotation, services, why, until)


def _rolled_out_at(status: dict[str, Any], report: RolloutReport | None) -> datetime | None:
    """When the rollout completed (the Secret write, without restart targets)."""
    if report is None:
        return parse_time(status.get("lastRotationTime"))
    return parse_time(find(status.get("conditions"), "RolloutComplete").get("lastTransitionTime"))


async def _waiting(
    rotation: Rotation, services: Services, message: str, wake: datetime | None
) -> NoReturn:
    """Say what the rotation waits for and stop until ``wake``."""
    obj = rotation.obj
    old = find((obj.get("status") or {}).get("conditions"), "Rotating")
    if (old.get("reason"), old.get("message")) != ("WaitingForRollout", message):
        condition = ("Rotating", "True", "WaitingForRollout", message)
        await services.reporter.patch(
            obj, {"conditions": services.reporter.conditions(obj, condition)}
        )
    raise Stop(wake)
