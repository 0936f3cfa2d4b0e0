"""The rate budget paces requests and backs off on the server's word, with a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from auth0_rotator.auth0 import RateBudget
from auth0_rotator.auth0._ratelimit import PACING_FACTOR


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _budget(t: FakeTime, rate: float = 10, burst: int = 5) -> RateBudget:
    return RateBudget(rate, burst, clock=t.clock, wall_clock=t.clock, sleep=t.sleep)


async def test_burst_goes_at_once_then_requests_are_paced_below_the_rate() -> None:
    t = FakeTime()
    budget = _budget(t)
    for _ in range(5):
        await budget.acquire()
    assert t.sleeps == []
    start = t.now
    for _ in range(10):
        await budget.acquire()
    assert t.now - start == pytest.approx(10 / (10 * PACING_FACTOR))


async def test_a_429_blocks_every_caller_until_the_reset_and_halves_the_pace() -> None:
    t = FakeTime()
    budget = _budget(t)
    blocked = budget.observe(
        429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(t.now) + 3)}
    )
    assert 3.05 <= blocked <= 3.25
    assert budget.rate == pytest.approx(budget.max_rate / 2)
    start = t.now
    await budget.acquire()
    assert t.now - start >= 3.05


async def test_simultaneous_429s_halve_the_pace_once() -> None:
    t = FakeTime()
    budget = _budget(t)
    headers = {"x-ratelimit-reset": str(int(t.now) + 2)}
    for _ in range(3):
        budget.observe(429, headers)
    assert budget.rate == pytest.approx(budget.max_rate / 2)


async def test_successes_win_the_pace_back_gradually() -> None:
    t = FakeTime()
    budget = _budget(t)
    budget.observe(429, {"x-ratelimit-reset": str(int(t.now))})
    t.now += 1
    for _ in range(10):
        budget.observe(200, {})
    assert budget.rate == pytest.approx(budget.max_rate)


async def test_server_remaining_drains_the_local_bucket() -> None:
    t = FakeTime()
    budget = _budget(t, rate=10, burst=5)
    budget.observe(200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(t.now) + 1)})
    assert budget.server_remaining == 0
    await budget.acquire()
    assert t.sleeps and t.sleeps[0] > 0


async def test_callers_are_served_in_arrival_order() -> None:
    t = FakeTime()
    budget = _budget(t, rate=10, burst=1)
    order: list[int] = []

    async def caller(i: int) -> None:
        await budget.acquire()
        order.append(i)

    await asyncio.gather(*(caller(i) for i in range(5)))
    assert order == [0, 1, 2, 3, 4]


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="requestsPerSecond"):
        RateBudget(0, 10)
