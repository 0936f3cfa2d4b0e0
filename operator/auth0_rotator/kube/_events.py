"""Events about our resources and workloads: posted in the background, in order, aggregated.

Events are best effort: posting never delays a rotation, and a failed or
(beyond a backlog) dropped Event never fails one. An identical Event within a
window bumps the count of the first, as client-go's EventCorrelator does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from auth0_rotator.kube._base import ApiAccess
from auth0_rotator.kube._errors import KubeError, api_errors
from auth0_rotator.schedule import format_time, parse_time

__all__ = ["EventRecorder"]

log = logging.getLogger(__name__)

_EVENT_BACKLOG = 1000
"""Events waiting to be posted; beyond this they are dropped (Events are best effort)."""
_EVENT_HOLD = 1.0
"""Seconds an Event waits at most for rotations in their critical steps (see ``holding_events``)."""
_EVENT_WINDOW = timedelta(minutes=10)
"""A repeat of an identical Event within this window is counted on the first one."""
_EVENT_MEMORY = 4096
"""Recent Events remembered for aggregation (oldest forgotten first)."""


@dataclass
class _SeenEvent:
    name: str
    count: int
    last: datetime


class EventRecorder(ApiAccess):
    """Posts core/v1 Events from one background task."""

    def __init__(self, api: Any) -> None:
        super().__init__(api)
        self._events: asyncio.Queue[tuple[str, dict[str, Any], float]] = asyncio.Queue(
            _EVENT_BACKLOG
        )
        self._holds = 0
        self._unheld = asyncio.Event()
        self._unheld.set()
        self._recent_events: dict[tuple[Any, ...], _SeenEvent] = {}
        self._last_event_nanos = 0
        self._event_task: asyncio.Task[None] | None = None

    async def post_event(
        self, obj: dict[str, Any], event_type: str, reason: str, message: str, now: datetime
    ) -> None:
        """Record a core/v1 Event about ``obj``, in the background and in order.

        Events are best effort: posting never delays a rotation, and a failed or
        (beyond a backlog of 1000) dropped Event never fails one.
        """
        meta = obj.get("metadata") or {}
        stamp = format_time(now)
        # Named like client-go's recorder: <object>.<hex nanoseconds>. Names sort in
        # posting order, so `kubectl describe` (which sorts by lastTimestamp, to the
        # second) keeps same-second Events in the order they happened.
        nanos = max(int(now.timestamp() * 1e9), self._last_event_nanos + 1)
        self._last_event_nanos = nanos
        body = {
            "metadata": {
                "name": f"{meta.get('name')}.{nanos:x}",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": event_type,
            "source": {"component": "auth0-rotator"},
            "reportingComponent": "auth0-rotator",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        if self._event_task is None:
            self._event_task = asyncio.create_task(self._post_events())
        try:
            self._events.put_nowait((str(meta.get("namespace")), body, time.monotonic()))
        except asyncio.QueueFull:
            log.warning("event backlog full; dropped Event %s for %s", reason, meta.get("name"))

    async def _post_event(self, namespace: str, body: dict[str, Any]) -> None:
        """Create the Event, or count a repeat of a recent identical one (aggregation).

        The same type, reason and message about the same object within
        ``_EVENT_WINDOW`` bumps ``count`` and ``lastTimestamp`` of the Event
        already posted, as client-go's EventCorrelator does, instead of adding one.
        """
        involved = body["involvedObject"]
        key = (namespace, involved.get("uid"), body["type"], body["reason"], body["message"])
        seen = self._recent_events.pop(key, None)
        stamp = parse_time(body["lastTimestamp"])
        if seen is not None and stamp is not None and stamp - seen.last < _EVENT_WINDOW:
            count = seen.count + 1
            try:
                with api_errors("count an Event"):
                    await self.core.patch_namespaced_event(
                        seen.name,
                        namespace,
                        {"count": count, "lastTimestamp": body["lastTimestamp"]},
                    )
                self._recent_events[key] = _SeenEvent(seen.name, count, stamp)
                return
            except KubeError as exc:
                if exc.status != 404:  # gone (expired): post a new one below
                    raise
        with api_errors("post an Event"):
            created = await self.core.create_namespaced_event(namespace, body)
        name = getattr(getattr(created, "metadata", None), "name", None) or body["metadata"]["name"]
        if stamp is not None:
            self._recent_events[key] = _SeenEvent(str(name), 1, stamp)
            while len(self._recent_events) > _EVENT_MEMORY:
                self._recent_events.pop(next(iter(self._recent_events)))

    @contextlib.contextmanager
    def holding_events(self) -> Iterator[None]:
        """Post no Event while the block runs (each waits ``_EVENT_HOLD`` seconds at most).

        A rotation's steps from claim to restart wait on the API server one after
        another; the Events about them can wait until after.
        """
        self._holds += 1
        self._unheld.clear()
        try:
            yield
        finally:
            self._holds -= 1
            if not self._holds:
                self._unheld.set()

    async def _post_events(self) -> None:
        while True:
            namespace, body, queued = await self._events.get()
            held_for = queued + _EVENT_HOLD - time.monotonic()
            if self._holds and held_for > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(held_for):  # not wait_for: see controller
                        await self._unheld.wait()
            try:
                await self._post_event(namespace, body)
            except KubeError as exc:
                log.debug("Event %s not posted: HTTP %s", body["reason"], exc.status)
            except Exception as exc:  # best effort: never the rotation's problem
                log.debug("Event %s not posted: %s", body["reason"], type(exc).__name__)
            finally:
                self._events.task_done()

    async def aclose(self) -> None:
        """Post the Events still queued (for up to 5 seconds), then stop."""
        if self._event_task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await self._events.join()
        self._event_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._event_task
        self._event_task = None
