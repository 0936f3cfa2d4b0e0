"""Status conditions: the one place that builds them, for every resource kind.

A condition's ``lastTransitionTime`` moves only when its ``status`` changes,
as Kubernetes conventions ask; a new reason or message with the same status
keeps the time of the last transition.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from auth0_rotator.schedule import format_time

__all__ = ["Condition", "find", "set_condition"]

Condition = tuple[str, str, str, str]
"""``(type, status, reason, message)``."""


def find(conditions: list[dict[str, Any]] | None, ctype: str) -> dict[str, Any]:
    """The condition of type ``ctype`` (``{}`` if absent)."""
    return next((c for c in conditions or [] if c.get("type") == ctype), {})


def set_condition(
    conditions: list[dict[str, Any]] | None,
    condition: Condition,
    now: datetime,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """``conditions`` with ``condition`` set (``generation``: its observedGeneration, if any)."""
    ctype, status, reason, message = condition
    old = find(conditions, ctype)
    changed = not old or old.get("status") != status
    new: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": (
            format_time(now) if changed else old.get("lastTransitionTime") or format_time(now)
        ),
    }
    if generation is not None:
        new["observedGeneration"] = generation
    return [c for c in conditions or [] if c.get("type") != ctype] + [new]
