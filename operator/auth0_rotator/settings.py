"""The engine's settings: one dataclass, every attribute with a production default."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from auth0_rotator.schedule import Clock, SystemClock

__all__ = ["EngineSettings"]


@dataclass
class EngineSettings:
    """Knobs of the rotation engine."""

    identity: str = "auth0-rotator"
    """Who holds a journal; a restarted process with the same identity resumes it at once."""
    clock: Clock = field(default_factory=SystemClock)
    verify_timeout: float = 60.0
    """Seconds to wait for Auth0 to accept a new secret before reporting VerificationFailed."""
    verify_interval: float = 1.0
    stale_journal_after: timedelta = timedelta(minutes=5)
    """A journal held by another identity is taken over after this long."""
    retry_after: timedelta = timedelta(seconds=30)
    """When to look again after a retryable failure."""
    recheck_after: timedelta = timedelta(minutes=10)
    """When to look again after a failure a user must fix (scopes can change in Auth0)."""
    rollout_poll: timedelta = timedelta(seconds=30)
    """How often a rollout in progress is looked at without news: the fallback, since the
    restart targets' watch events wake a waiting resource (see :mod:`auth0_rotator.waiters`)."""
    restart_window: timedelta = timedelta(seconds=5)
    """A restart waits this long after its rotation, so resources rotating together for
    one workload restart it once (restart-storm coalescing)."""
    rollout_deadline: timedelta = timedelta(minutes=10)
    """After this long since the rotation an unfinished rollout is reported as RolloutStalled."""
    reconcile_deadline: float = 300.0
    """Seconds one reconcile may take; it is then cancelled (like a crash) and retried."""
