"""The work queue: which resource to reconcile next, and when to look again.

Watch events (from kopf) and due times (from one scheduler heap) put resource
keys on a queue; a few workers reconcile them. A key is never reconciled by
two workers at once, and a key that changes while it is being reconciled is
reconciled again afterwards. Nothing polls: an idle resource costs one heap
entry (its next scheduled rotation), not a task or an API call.

Bounded work: every reconcile has a deadline (it is cancelled there, which the
rotation journal survives like a crash, and retried with backoff), and
:attr:`Controller.stuck` names reconciles that outlived it anyway, for the
liveness probe. Keys are partitioned (by Auth0 domain, as the engine last saw
it): one partition runs on at most half the workers at a time, and its other
keys wait aside without taking a worker, so one slow tenant cannot occupy
them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import heapq
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from auth0_rotator import logs
from auth0_rotator.schedule import Clock

__all__ = ["Controller", "Key"]

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""``(namespace, name)`` of an Auth0ClientSecret."""

Body = dict[str, Any]
"""An object as a watch event showed it."""

Reconcile = Callable[[str, str, Body | None], Awaitable[datetime | None]]
"""``(namespace, name, seen)``: ``seen`` is the key's latest watch body, if it was kept."""

_SEEN_KEPT = 1000
"""Watch bodies kept for queued keys at most (a restart queues every key: beyond this
many, reconciles read the object instead of holding it in memory)."""

_MAX_SLEEP = 30.0
"""The scheduler re-reads the clock at least this often (the clock may be shifted)."""

STUCK_GRACE = 30.0
"""Seconds past its deadline after which a reconcile that did not end counts as stuck."""

Partition = Callable[[Key], str | None]
"""Which partition (Auth0 domain) a key belongs to, if known."""


class Controller:
    """Runs ``reconcile`` for queued keys with ``workers`` concurrent workers."""

    def __init__(
        self,
        reconcile: Reconcile,
        clock: Clock,
        workers: int = 4,
        *,
        deadline: float | None = None,
        partition: Partition | None = None,
    ) -> None:
        self._reconcile = reconcile
        self._clock = clock
        self._workers = workers
        self._deadline = deadline
        """Seconds one reconcile may take before it is cancelled (``None``: no limit)."""
        self._partition = partition
        self._share = max(1, math.ceil(workers / 2))
        """Workers one partition may occupy at once."""
        self._running: dict[str, int] = {}
        self._parked: dict[str, deque[Key]] = {}
        """Keys waiting for their partition to have a free share (still counted as queued)."""
        self._admitted: dict[Key, str] = {}
        """Parked keys handed a freed share: queued again, their slot kept for them."""
        self._started: dict[Key, float] = {}
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._dirty: dict[Key, list[Callable[[], bool]] | None] = {}
        """Keys changed while reconciled: their echo checks (``None``: a real change)."""
        self._seen: dict[Key, Body] = {}
        """The latest watch body of queued or active keys (saves the reconcile a read)."""
        self._due: dict[Key, datetime] = {}
        self._heap: list[tuple[datetime, int, Key]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._failures: dict[Key, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.reconciles = 0
        """How many reconciles ran (for tests and metrics)."""

    # -- feeding ----------------------------------------------------------------------

    def enqueue(
        self, key: Key, echo: Callable[[], bool] | None = None, seen: Body | None = None
    ) -> None:
        """Reconcile ``key`` soon (once, however often this is called meanwhile).

        ``echo`` tells whether the event behind this call only shows a write of
        our own; it is asked once the key is not being reconciled (the reconcile
        may not have noted its write yet), and a ``True`` answer skips the call.
        ``seen`` is the object as that event showed it: the reconcile starts from
        the latest one instead of reading the object (informer semantics: a
        newer change is another event, which reconciles again).
        """
        if key in self._active:
            if echo is None:
                self._dirty[key] = None
            else:
                checks = self._dirty.setdefault(key, [])
                if checks is not None:
                    checks.append(echo)
        elif echo is not None and echo():
            if seen is not None:
                # What a queued key kept is older than this echo.
                self._seen.pop(key, None)
            return
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)
        if seen is not None and (key in self._seen or len(self._seen) < _SEEN_KEPT):
            # A copy: the reconcile updates it as it writes, the watch's stays as sent.
            self._seen[key] = copy.deepcopy(seen)

    def schedule(self, key: Key, when: datetime) -> None:
        """Reconcile ``key`` at ``when`` (an earlier pending time wins)."""
        current = self._due.get(key)
        if current is not None and current <= when:
            return
        self._due[key] = when
        heapq.heappush(self._heap, (when, next(self._seq), key))
        self._wake.set()

    def forget(self, key: Key) -> None:
        """Stop scheduling a deleted resource."""
        self._due.pop(key, None)
        self._failures.pop(key, None)
        self._seen.pop(key, None)

    def poke(self) -> None:
        """Re-read the clock now (after the clock was shifted)."""
        self._wake.set()

    @property
    def queued(self) -> int:
        """Keys waiting for a worker (or for their partition's share)."""
        return self._queue.qsize() + sum(len(q) for q in self._parked.values())

    @property
    def stuck(self) -> list[Key]:
        """Keys whose reconcile runs longer than its deadline plus :data:`STUCK_GRACE`."""
        if self._deadline is None:
            return []
        limit = time.monotonic() - self._deadline - STUCK_GRACE
        return sorted(key for key, started in self._started.items() if started < limit)

    @property
    def alive(self) -> bool:
        """Whether the workers and the scheduler are running (none has died)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    @property
    def scheduled(self) -> int:
        """Number of resources with a pending due time."""
        return len(self._due)

    # -- running -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the workers and the scheduler."""
        self._tasks = [asyncio.create_task(self._worker(i)) for i in range(self._workers)]
        self._tasks.append(asyncio.create_task(self._timer()))

    async def stop(self) -> None:
        """Cancel the workers and the scheduler, waiting for them to end."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _worker(self, index: int) -> None:
        while True:
            key = await self._queue.get()
            part = self._admitted.pop(key, None)
            if part is None:
                part = self._partition(key) if self._partition is not None else None
                if part is not None and self._running.get(part, 0) >= self._share:
                    # Its partition has its share of workers: wait aside, still queued.
                    self._parked.setdefault(part, deque()).append(key)
                    self._queue.task_done()
                    continue
                if part is not None:
                    self._running[part] = self._running.get(part, 0) + 1
            try:
                await self._run(key)
            finally:
                if part is not None:
                    self._release(part)

    def _release(self, part: str) -> None:
        """A reconcile of ``part`` ended: its share goes to the longest-parked key, if any.

        The share is handed over, not freed: keys of the partition queued since
        (a busy resource's next change, say) cannot overtake one that waits.
        """
        parked = self._parked.get(part)
        if parked:
            key = parked.popleft()
            if not parked:
                del self._parked[part]
            self._admitted[key] = part
            self._queue.put_nowait(key)
            return
        self._running[part] -= 1
        if not self._running[part]:
            del self._running[part]

    async def _run(self, key: Key) -> None:
        self._queued.discard(key)
        self._active.add(key)
        self._started[key] = time.monotonic()
        wake: datetime | None = None
        # Every line logged during this reconcile names the resource (and the
        # engine adds the rotation id): see auth0_rotator.logs.
        resource_token = logs.resource.set(key)
        rotation_token = logs.rotation.set(None)
        try:
            async with asyncio.timeout(self._deadline):
                wake = await self._reconcile(*key, self._seen.pop(key, None))
            self._failures.pop(key, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Never log the exception text: API error bodies are not ours to print.
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = min(2.0**failures, 300.0)
            if isinstance(exc, TimeoutError):
                what = f"did not finish within {self._deadline:g}s"
            else:
                status = f" HTTP {exc.status}" if hasattr(exc, "status") else ""
                what = f"failed ({type(exc).__name__}{status})"
            log.warning("reconcile of %s/%s %s; retrying in %.0fs", *key, what, delay)
            wake = self._clock() + timedelta(seconds=delay)
        finally:
            logs.rotation.reset(rotation_token)
            logs.resource.reset(resource_token)
            self.reconciles += 1
            self._active.discard(key)
            self._started.pop(key, None)
            self._queue.task_done()
        if key in self._dirty:
            checks = self._dirty.pop(key)
            # Ask every check: each consumes the expectation it matched.
            if checks is None or not all([check() for check in checks]):
                self.enqueue(key)
        if key not in self._queued:
            self._seen.pop(key, None)
        if wake is not None:
            self.schedule(key, wake)

    async def _timer(self) -> None:
        while True:
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                when, _, key = heapq.heappop(self._heap)
                if self._due.get(key) == when:
                    del self._due[key]
                    self.enqueue(key)
            sleep = _MAX_SLEEP
            if self._heap:
                sleep = min(sleep, max((self._heap[0][0] - now).total_seconds(), 0.0))
            self._wake.clear()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
            # cancellation that arrives as the event is set, and stop() would hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(sleep):
                    await self._wake.wait()
