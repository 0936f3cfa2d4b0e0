"""When to rotate: a plain function of the spec, the status, the Secret and the time.

:func:`decide` answers one question for one resource — what should happen
now — following SPEC §2. It performs no I/O, so every trigger rule is unit
tested with any clock. Triggers are *consumed* by the status fields written
together with the rotation claim (``lastRotateRequest``, ``specHash``,
``clientRef``, ``nextRotationTime``), so the same trigger never fires twice,
across crashes and restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from auth0_rotator.model import ClientSecretSpec
from auth0_rotator.schedule import format_time, parse_time

__all__ = ["Decision", "SecretState", "decide", "forced_rotation_hold", "next_rotation_time"]


@dataclass(frozen=True)
class SecretState:
    """What the operator sees of the target Secret."""

    exists: bool
    owned: bool = True
    """Carries this resource's ownership label/annotation (a foreign Secret is not)."""
    resource_version: str = ""
    complete: bool = True
    """Every managed key is present and non-empty."""


@dataclass(frozen=True)
class Decision:
    """What to do now.

    ``action`` is one of ``resume``, ``rotate``, ``fetch``, ``relocate``,
    ``idle``; ``consume`` holds the status fields the claim writes so the
    trigger is spent; ``wake_at`` is when to look again without an event.
    """

    action: str
    trigger: str = ""
    consume: dict[str, Any] = field(default_factory=dict)
    wake_at: datetime | None = None
    reason: str = ""
    message: str = ""


def next_rotation_time(spec: ClientSecretSpec, now: datetime) -> datetime | None:
    """The next scheduled fire after ``now``; ``None`` without a schedule."""
    if spec.schedule is None:
        return None
    return spec.schedule.next_fire_time(now)


def forced_rotation_hold(
    status: dict[str, Any], floor: timedelta, now: datetime
) -> datetime | None:
    """When a forced rotation may run under the tenant's floor; ``None``: now.

    ``floor`` is the tenant's ``minForcedRotationInterval``: one namespace must
    not drain a shared tenant's rate budget by forcing rotations back to back.
    """
    last = parse_time(status.get("lastRotationTime"))
    if not floor or last is None or now >= last + floor:
        return None
    return last + floor


def _interval_ok(spec: ClientSecretSpec, status: dict[str, Any], now: datetime) -> datetime | None:
    """``None`` if ``minInterval`` allows a rotation now, else when it will."""
    last = parse_time(status.get("lastRotationTime"))
    if last is None or now >= last + spec.min_interval:
        return None
    return last + spec.min_interval


def decide(
    spec: ClientSecretSpec,
    status: dict[str, Any],
    rotate_request: str | None,
    secret: SecretState,
    now: datetime,
) -> Decision:
    """Decide what the resource needs now (SPEC §2)."""
    if status.get("rotation"):
        # An unfinished rotation always finishes first, even when suspended:
        # its value may already live in Auth0 only.
        return Decision("resume", trigger=str(status["rotation"].get("trigger", "")))
    if spec.suspend:
        return Decision(
            "idle",
            reason="Suspended",
            message="spec.suspend is true: no rotations until it is cleared",
        )

    scheduled = parse_time(status.get("nextRotationTime"))
    next_fire = next_rotation_time(spec, now)
    next_text = format_time(next_fire) if next_fire else None

    if status.get("clientRef") != spec.client_ref:
        consume = {
            "clientRef": spec.client_ref,
            "specHash": spec.spec_hash,
            "nextRotationTime": next_text,
            "schedule": _schedule_text(spec),
        }
        if rotate_request and not status.get("clientRef"):
            # A request present at creation is part of the initial state, not a new one;
            # one set together with a client change still rotates after the adoption.
            consume["lastRotateRequest"] = rotate_request
        if spec.initialization == "Rotate":
            return Decision("rotate", trigger="initialization", consume=consume)
        return Decision("fetch", trigger="initialization", consume=consume)

    if rotate_request and rotate_request != status.get("lastRotateRequest"):
        return Decision(
            "rotate",
            trigger="annotation",
            consume={"lastRotateRequest": rotate_request, "specHash": spec.spec_hash},
        )

    if status.get("specHash") != spec.spec_hash:
        held = _interval_ok(spec, status, now)
        if held is None:
            return Decision(
                "rotate",
                trigger="spec-change",
                consume={
                    "specHash": spec.spec_hash,
                    "nextRotationTime": next_text,
                    "schedule": _schedule_text(spec),
                },
            )
        if status.get("secretName") != spec.secret_name or not secret.exists or not secret.complete:
            return Decision("relocate", trigger="spec-change", wake_at=held)
        return Decision(
            "idle",
            wake_at=held,
            reason="MinInterval",
            message=f"spec change rotates at {format_time(held)} (spec.minInterval)",
        )

    if scheduled is not None and spec.schedule is not None and scheduled <= now:
        held = _interval_ok(spec, status, now)
        if held is None:
            # One rotation for any number of missed fires: the next is after now.
            return Decision(
                "rotate",
                trigger="schedule",
                consume={"nextRotationTime": next_text, "schedule": _schedule_text(spec)},
            )
        return Decision(
            "idle",
            wake_at=held,
            reason="MinInterval",
            message=f"scheduled rotation held until {format_time(held)} (spec.minInterval)",
        )

    if (
        not secret.exists
        or not secret.complete
        or (secret.owned and secret.resource_version != status.get("secretResourceVersion"))
    ):
        return Decision("fetch", trigger="drift")
    if not secret.owned:
        return Decision("fetch", trigger="drift")

    current = _schedule_text(spec)
    if current is None:
        if status.get("nextRotationTime") or status.get("schedule"):
            return Decision("idle", consume={"nextRotationTime": None, "schedule": None})
        return Decision("idle")
    if scheduled is None or status.get("schedule") != current:
        # New or edited schedule: recompute the next fire, rotate nothing.
        return Decision(
            "idle", consume={"nextRotationTime": next_text, "schedule": current}, wake_at=next_fire
        )
    return Decision("idle", wake_at=scheduled)


def _schedule_text(spec: ClientSecretSpec) -> str | None:
    """The schedule as recorded in status, to notice edits."""
    return f"{spec.schedule.expression}@{spec.schedule.tz}" if spec.schedule else None
