"""Prometheus metrics of one operator process (names prefixed ``auth0_rotator_``).

Every metric lives in a registry of the process's own (not the library's
global one), so several operators can run in one test process. Labels are
bounded: resource names, tenant domains, Auth0 endpoint names, HTTP codes,
triggers and condition reasons, never a secret or a value-derived string.

Per-resource series (timestamps, secret age, the Ready and RolloutComplete
conditions with their reasons and transition times) are computed at scrape
time from what the watch last showed of each Auth0ClientSecret, and disappear
with the resource. The chart's PrometheusRule alerts on them
(``docs/runbooks.md``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from auth0_rotator import __version__
from auth0_rotator.schedule import parse_time

__all__ = ["Metrics", "ResourceView"]


@dataclass(frozen=True)
class Condition:
    """One condition of a resource, as the metrics show it."""

    status: str
    reason: str
    since: float | None
    """Its ``lastTransitionTime`` (Unix time): when ``status`` last changed."""


@dataclass(frozen=True)
class ResourceView:
    """What the metrics need of one Auth0ClientSecret's status."""

    ready_reason: str
    last_rotation: float | None
    next_rotation: float | None
    ready: Condition | None = None
    rollout: Condition | None = None
    """``RolloutComplete``; ``None`` for a resource without restart targets."""


def _stamp(value: object) -> float | None:
    moment = parse_time(value) if isinstance(value, str) else None
    return moment.timestamp() if moment is not None else None


def _condition(conditions: object, ctype: str) -> Condition | None:
    if not isinstance(conditions, list):
        return None
    for c in conditions:
        if isinstance(c, dict) and c.get("type") == ctype:
            return Condition(
                str(c.get("status") or "Unknown"),
                str(c.get("reason") or "Unknown"),
                _stamp(c.get("lastTransitionTime")),
            )
    return None


def view_of(status: dict[str, object]) -> ResourceView:
    """The metric-relevant part of a status (tolerates anything missing)."""
    conditions = status.get("conditions")
    ready = _condition(conditions, "Ready")
    return ResourceView(
        ready.reason if ready is not None else "Unknown",
        _stamp(status.get("lastRotationTime")),
        _stamp(status.get("nextRotationTime")),
        ready,
        _condition(conditions, "RolloutComplete"),
    )


def _condition_series(name: str, what: str) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    """A condition's 1/0 gauge (with its reason) and its transition time, per resource."""
    return (
        GaugeMetricFamily(
            f"auth0_rotator_resource_{name}",
            f"1 if the {what} condition of an Auth0ClientSecret is True, else 0 "
            "(False or Unknown); reason: the condition's reason.",
            labels=["namespace", "name", "reason"],
        ),
        GaugeMetricFamily(
            f"auth0_rotator_resource_{name}_transition_timestamp_seconds",
            f"When the {what} condition last changed status (Unix time): how long it has "
            "been False is time() minus this.",
            labels=["namespace", "name"],
        ),
    )


class _ResourceCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        m = self._metrics
        now = m.wall_clock()
        last = GaugeMetricFamily(
            "auth0_rotator_last_rotation_timestamp_seconds",
            "When the secret of an Auth0ClientSecret was last rotated (Unix time).",
            labels=["namespace", "name"],
        )
        nxt = GaugeMetricFamily(
            "auth0_rotator_next_rotation_timestamp_seconds",
            "When the schedule rotates the secret next (Unix time); absent without a schedule.",
            labels=["namespace", "name"],
        )
        age = GaugeMetricFamily(
            "auth0_rotator_secret_age_seconds",
            "Seconds since the secret was last rotated; absent if it never was.",
            labels=["namespace", "name"],
        )
        by_reason = GaugeMetricFamily(
            "auth0_rotator_resources",
            "Auth0ClientSecrets seen by this operator, by the reason of their Ready condition.",
            labels=["ready_reason"],
        )
        ready, ready_since = _condition_series("ready", "Ready")
        rollout, rollout_since = _condition_series("rollout_complete", "RolloutComplete")
        counts: dict[str, int] = {}
        for (namespace, name), view in sorted(m.resources.items()):
            counts[view.ready_reason] = counts.get(view.ready_reason, 0) + 1
            for condition, gauge, since in (
                (view.ready, ready, ready_since),
                (view.rollout, rollout, rollout_since),
            ):
                if condition is not None:
                    ok = 1.0 if condition.status == "True" else 0.0
                    gauge.add_metric([namespace, name, condition.reason], ok)
                    if condition.since is not None:
                        since.add_metric([namespace, name], condition.since)
            if view.last_rotation is not None:
                last.add_metric([namespace, name], view.last_rotation)
                age.add_metric([namespace, name], max(now - view.last_rotation, 0.0))
            if view.next_rotation is not None:
                nxt.add_metric([namespace, name], view.next_rotation)
        for reason, count in sorted(counts.items()):
            by_reason.add_metric([reason], count)
        yield from (last, nxt, age, by_reason, ready, ready_since, rollout, rollout_since)
        reconciles, queued = m.work()
        done = CounterMetricFamily(
            "auth0_rotator_reconciles",
            "Reconciles finished by the work queue (successful or not).",
        )
        done.add_metric([], reconciles)
        depth = GaugeMetricFamily(
            "auth0_rotator_queue_depth", "Resources waiting for a worker (not yet reconciled)."
        )
        depth.add_metric([], queued)
        tasks = GaugeMetricFamily(
            "auth0_rotator_event_loop_tasks",
            "asyncio tasks alive in the operator's event loop (a steady climb is a leak).",
        )
        tasks.add_metric([], m.tasks())
        yield done
        yield depth
        yield tasks
        budget = GaugeMetricFamily(
            "auth0_rotator_auth0_rate_limit_remaining",
            "Requests left in an Auth0 domain's rate budget (one per domain, shared by every "
            "tenant object naming it): Auth0's x-ratelimit-remaining when it "
            "sent one, else the operator's own token bucket.",
            labels=["tenant"],
        )
        for tenant, remaining in sorted(m.budgets().items()):
            budget.add_metric([tenant], remaining)
        yield budget


class Metrics:
    """The registry and every series the operator updates."""

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self.wall_clock = wall_clock
        self.resources: dict[tuple[str, str], ResourceView] = {}
        self.budgets: Callable[[], dict[str, float]] = dict
        """Set by the runtime once tenants exist: tenant domain -> remaining requests."""
        self.work: Callable[[], tuple[int, int]] = lambda: (0, 0)
        """Set by the runtime once the work queue exists: (reconciles done, queued)."""
        self.tasks: Callable[[], int] = lambda: 0
        """Set by the runtime: tasks alive in its event loop (read on the loop's thread)."""
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Info(
            "auth0_rotator_build", "Version of the running operator.", registry=self.registry
        ).info({"version": __version__})
        self.leader = Gauge(
            "auth0_rotator_leader",
            "1 while this process holds the leader Lease (or runs without leader "
            "election) and acts; 0 while it waits as a standby.",
            registry=self.registry,
        )
        self.rotations = Counter(
            "auth0_rotator_rotations",
            "Rotations that finished (result=succeeded) or ran into a failure (result=failed, "
            "once per new failure reason), by trigger.",
            ["trigger", "result"],
            registry=self.registry,
        )
        self.failures = Counter(
            "auth0_rotator_failures",
            "Reconciles that ended in Ready=False, by condition reason (a new reason counts once).",
            ["reason"],
            registry=self.registry,
        )
        self.rotation_duration = Histogram(
            "auth0_rotator_rotation_duration_seconds",
            "From the claim of a rotation to the target Secret written and the journal closed.",
            ["trigger"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
            registry=self.registry,
        )
        self.rollout_duration = Histogram(
            "auth0_rotator_rollout_duration_seconds",
            "From a rotation to RolloutComplete=True for every restart target.",
            buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=self.registry,
        )
        self.auth0_requests = Counter(
            "auth0_rotator_auth0_requests",
            "Requests to Auth0 by tenant, endpoint and HTTP status code (0: no answer).",
            ["tenant", "endpoint", "code"],
            registry=self.registry,
        )
        self.registry.register(_ResourceCollector(self))

    # -- what the operator reports -------------------------------------------------------

    def resource_seen(self, namespace: str, name: str, status: dict[str, object]) -> None:
        """The watch showed this status of an Auth0ClientSecret."""
        self.resources[(namespace, name)] = view_of(status)

    def resource_gone(self, namespace: str, name: str) -> None:
        """The Auth0ClientSecret was deleted: its series go away."""
        self.resources.pop((namespace, name), None)

    def rotation_succeeded(self, trigger: str, seconds: float | None) -> None:
        """A rotation closed its journal with Ready=True."""
        self.rotations.labels(trigger or "unknown", "succeeded").inc()
        if seconds is not None:
            self.rotation_duration.labels(trigger or "unknown").observe(max(seconds, 0.0))

    def failed(self, reason: str, trigger: str | None) -> None:
        """Ready turned False with a new reason; ``trigger`` if a rotation was running."""
        self.failures.labels(reason).inc()
        if trigger:
            self.rotations.labels(trigger, "failed").inc()

    def rollout_completed(self, seconds: float) -> None:
        """Every restart target rolled out."""
        self.rollout_duration.observe(max(seconds, 0.0))

    def auth0_request(self, tenant: str, endpoint: str, status: int) -> None:
        """One answer (or none: status 0) from a tenant."""
        self.auth0_requests.labels(tenant, endpoint, str(status)).inc()
