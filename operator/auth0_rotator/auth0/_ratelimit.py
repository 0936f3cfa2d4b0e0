"""One rate budget per Auth0 domain, shared by every caller.

A local token bucket paces requests from the tenant's ``rateLimit`` (slightly
below it, so network jitter does not push requests over the server's limit),
and the server's ``x-ratelimit-*`` headers correct it: a lower
``remaining`` drains the local bucket, and a 429 blocks every caller until
``x-ratelimit-reset`` plus jitter. If the configured rate is higher than the
tenant really allows, each 429 window halves the pace and successes win it
back slowly (AIMD), so a wrong ``rateLimit`` costs a few 429s, not a storm.
Callers queue in order on one lock, so a burst of resources shares the
budget fairly instead of racing. A reset time further away than
``MAX_RESET_WAIT`` is not believed: a hostile or confused server cannot stall
every caller of a domain for longer than that per 429.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping

__all__ = ["MAX_RESET_WAIT", "PACING_FACTOR", "RateBudget"]

PACING_FACTOR = 0.95
"""Fraction of the configured rate the local bucket refills at."""

MAX_RESET_WAIT = 60.0
"""Longest wait one 429 may impose, whatever ``x-ratelimit-reset`` says."""

_EPSILON = 1e-6


class RateBudget:
    """A token bucket for one Auth0 domain's Management API calls."""

    def __init__(
        self,
        requests_per_second: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self.max_rate = self.rate = self.min_rate = 0.0
        self.burst = burst
        self._tokens = float(burst)
        self._updated = clock()
        self.configure(requests_per_second, burst)
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()
        self.server_remaining: int | None = None
        """The last ``x-ratelimit-remaining`` seen (for metrics)."""

    def configure(self, requests_per_second: float, burst: int) -> None:
        """Set the budget's limits (several tenants naming one domain: the lowest wins)."""
        if requests_per_second <= 0 or burst < 1:
            raise ValueError("rate limit needs requestsPerSecond > 0 and burst >= 1")
        self.max_rate = requests_per_second * PACING_FACTOR
        self.rate = min(self.rate, self.max_rate) if self.rate else self.max_rate
        """Current pace; below ``max_rate`` after 429s."""
        self.min_rate = min(self.max_rate, 0.2)
        self.burst = burst
        self._tokens = min(self._tokens, float(burst))

    @property
    def tokens(self) -> float:
        """Requests that may start now without waiting (the bucket's level)."""
        return min(float(self.burst), self._tokens + (self._clock() - self._updated) * self.rate)

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        return now

    async def acquire(self) -> None:
        """Wait until one request may be sent, then count it."""
        async with self._lock:
            while True:
                now = self._refill()
                wait = self._blocked_until - now
                # The epsilon absorbs float rounding: refilling for exactly
                # (1 - tokens) / rate seconds can leave 0.9999999 tokens.
                if wait <= 0 and self._tokens >= 1.0 - _EPSILON:
                    self._tokens = max(self._tokens - 1.0, 0.0)
                    return
                wait = max(wait, (1.0 - self._tokens) / self.rate, _EPSILON)
                await self._sleep(wait)

    def observe(self, status: int, headers: Mapping[str, str]) -> float:
        """Take the server's view into account; return seconds callers are now blocked."""
        remaining = _int_header(headers, "x-ratelimit-remaining")
        reset = _int_header(headers, "x-ratelimit-reset")
        now = self._refill()
        if remaining is not None:
            self.server_remaining = remaining
            self._tokens = min(self._tokens, float(remaining))
        if status == 429:
            if now >= self._blocked_until:
                # First 429 of this window: the real limit is below our pace.
                self.rate = max(self.min_rate, self.rate / 2)
            wait = max(float(reset) - self._wall(), 0.0) if reset is not None else 1.0
            wait = min(wait, MAX_RESET_WAIT)
            # Jitter so that several operators (or resources) do not return in lockstep.
            wait += random.uniform(0.05, 0.25)  # noqa: S311 - not cryptographic
            self._blocked_until = max(self._blocked_until, now + wait)
            self._tokens = min(self._tokens, 0.0)
        elif status < 400 and self.rate < self.max_rate:
            self.rate = min(self.max_rate, self.rate + self.max_rate / 20)
        return max(self._blocked_until - now, 0.0)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
