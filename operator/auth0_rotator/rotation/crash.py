"""Crash points: where the crash-safety tests kill the operator, all named in one place.

With ``AUTH0_ROTATOR_TEST_CRASH_AT=<point>`` in its environment, the process
SIGKILLs itself when the journal driver reaches that point; otherwise the
hook does nothing. The driver fires every point (:func:`reached`), and a
strategy the points only it has (``key-registered``, ``retired``); the tests
kill at each one and check that a restarted operator converges with exactly
one change in Auth0 (for ``KeyPair``: no orphan credential).
"""

from __future__ import annotations

import os
import signal

from auth0_rotator.journal import Phase

__all__ = ["CRASH_ENV", "CRASH_POINTS", "PERSISTED_POINTS", "reached"]

CRASH_ENV = "AUTH0_ROTATOR_TEST_CRASH_AT"
"""Test hook: SIGKILL this process when the named point is reached (inert unless set)."""

CRASH_POINTS = (
    "prestaged",  # fresh values staged (create-only), nothing claimed yet
    "claimed",  # the claim is written
    "staged",  # phase Staged persisted (or recorded by the claim)
    "requested",  # phase Requested persisted
    "next-written",  # Announce: the Secret holds the next value; nothing persisted since
    "announced",  # Announce: phase Announced persisted; restart, wait, then Auth0
    "key-registered",  # KeyPair: Auth0 answered the register call; nothing persisted since
    "registered",  # KeyPair: phase Registered persisted (the credential id is journaled)
    "auth0-written",  # a strategy step made Auth0 hold the value (nothing persisted since)
    "applied",  # the value is staged; verification is next
    "verified",  # phase Verified persisted
    "secret-written",  # the target Secret holds the value; restart and close are next
    "rolling-out",  # KeyPair: phase RollingOut persisted; restart, wait, retire are next
    "retired",  # KeyPair: the old key is detached and deleted; the journal closes next
    "delivered",  # every auth0Target written; the journal closes next
)
"""Every point the crash-safety tests kill the process at, in the order they are reached."""

PERSISTED_POINTS = {
    Phase.STAGED: "staged",
    Phase.REQUESTED: "requested",
    Phase.ANNOUNCED: "announced",
    Phase.REGISTERED: "registered",
    Phase.VERIFIED: "verified",
    Phase.ROLLING_OUT: "rolling-out",
}


def reached(point: str) -> None:
    """The driver reached ``point``: die here if the test hook asks for it."""
    if os.environ.get(CRASH_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)
