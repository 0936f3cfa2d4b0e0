"""The work queue: which resource to reconcile next, and when to look again.

Watch events (from kopf) and due times (from one scheduler heap) put resource
keys on a queue; a few workers reconcile them. A key is never reconciled by
two workers at once, and a key that changes while it is being reconciled is
reconciled again afterwards. Nothing polls: an idle resource costs one heap
entry (its next scheduled rotation), not a task or an API call.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import heapq
import itertools
import logging
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


class Controller:
    """Runs ``reconcile`` for queued keys with ``workers`` concurrent workers."""

    def __init__(self, reconcile: Reconcile, clock: Clock, workers: int = 4) -> None:
        self._reconcile = reconcile
        self._clock = clock
        self._workers = workers
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
        """Keys waiting for a worker."""
        return self._queue.qsize()

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
            self._queued.discard(key)
            self._active.add(key)
            wake: datetime | None = None
            # Every line logged during this reconcile names the resource (and the
            # engine adds the rotation id): see auth0_rotator.logs.
            resource_token = logs.resource.set(key)
            rotation_token = logs.rotation.set(None)
            try:
                wake = await self._reconcile(*key, self._seen.pop(key, None))
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Never log the exception text: API error bodies are not ours to print.
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(2.0**failures, 300.0)
                log.warning(
                    "reconcile of %s/%s failed (%s%s); retrying in %.0fs",
                    *key,
                    type(exc).__name__,
                    f" HTTP {exc.status}" if hasattr(exc, "status") else "",
                    delay,
                )
                wake = self._clock() + timedelta(seconds=delay)
            finally:
                logs.rotation.reset(rotation_token)
                logs.resource.reset(resource_token)
                self.reconciles += 1
                self._active.discard(key)
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=sleep)
