"""One circuit breaker per Auth0 domain: a host that does not answer is not asked again at once.

A request that stalls (its deadline passed, a connect or read timed out, or
the answer was too large) costs a worker the whole deadline. After
``threshold`` stalls in a row the domain is
*open*: every call to it fails at once, without the network, until
``cooldown`` seconds have passed. Then one call is let through as a probe
(the others still fail at once); an answer of any kind closes the breaker,
another failure opens it again. So a hostile or dead tenant costs at most one
request deadline per cooldown, whatever the number of resources using it, and
the other tenants' work goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Whether calls to one domain may go out now."""

    def __init__(
        self,
        *,
        threshold: int = 2,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("a circuit breaker needs threshold >= 1 and cooldown > 0")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None
        self._probing = False
        self.last_stall = ""
        """What the last stalled request met (for messages)."""

    @property
    def open(self) -> bool:
        """Whether calls are refused right now (open, or a probe is out)."""
        return self.retry_in() is not None

    def retry_in(self) -> float | None:
        """``None`` if a call may go out now, else seconds until one may (a probe's return)."""
        if self._open_until is None:
            return None
        left = self._open_until - self._clock()
        if left > 0:
            return left
        return self.cooldown if self._probing else None

    def admit(self) -> bool:
        """Take permission for one call; ``False`` means fail it without sending."""
        if self.retry_in() is not None:
            return False
        if self._open_until is not None:
            self._probing = True  # half-open: this call is the probe
        return True

    def answered(self) -> None:
        """The domain answered (any HTTP status): close."""
        self._failures = 0
        self._open_until = None
        self._probing = False

    def stalled(self, what: str = "no timely answer") -> None:
        """A call used up its time (``what``): count it; open after ``threshold`` in a row."""
        self.last_stall = what
        self._failures += 1
        self._probing = False
        if self._failures >= self.threshold or self._open_until is not None:
            self._open_until = self._clock() + self.cooldown
