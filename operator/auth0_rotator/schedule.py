"""Cron schedules in a time zone, and the clock every decision reads.

``next_fire_time`` is a plain function of the expression, the zone and an
instant, so the trigger logic is tested with any time without waiting.
Daylight-saving transitions are handled by cronsim on zone-aware datetimes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

__all__ = ["Clock", "CronSchedule", "ScheduleError", "SystemClock", "format_time", "parse_time"]


class ScheduleError(ValueError):
    """A cron expression that cannot be used."""


class CronSchedule:
    """A 5-field cron expression evaluated in ``tz``."""

    def __init__(self, expression: str, tz: ZoneInfo) -> None:
        fields = expression.split()
        if len(fields) != 5:
            raise ScheduleError(
                f"{expression!r} has {len(fields)} fields; use 5: minute hour day month weekday"
            )
        self.expression = " ".join(fields)
        self.tz = tz
        try:
            self.next_fire_time(datetime(2000, 1, 1, tzinfo=UTC))
        except (CronSimError, StopIteration) as exc:
            raise ScheduleError(f"{expression!r} is not a valid cron expression: {exc}") from None

    def next_fire_time(self, after: datetime) -> datetime:
        """The first fire strictly after ``after`` (an aware datetime), in UTC."""
        local = after.astimezone(self.tz).replace(second=0, microsecond=0)
        fire: datetime = next(CronSim(self.expression, local))
        return fire.astimezone(UTC)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronSchedule) and (self.expression, str(self.tz)) == (
            other.expression,
            str(other.tz),
        )

    def __hash__(self) -> int:
        return hash((self.expression, str(self.tz)))


Clock = Callable[[], datetime]
"""Returns the current time as an aware UTC datetime."""


class SystemClock:
    """The real clock, optionally shifted (the demo and tests move time forward)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def __call__(self) -> datetime:
        """The current time plus the offset."""
        return datetime.now(UTC) + self.offset


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes times."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    """Parse a Kubernetes timestamp; ``None`` for a missing or malformed one."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None
