"""Start the kopf runtime with this operator's settings, behind the leader Lease.

The decorated handlers live in :mod:`auth0_rotator.handlers`; this module
wires options (scope, logging) into :func:`kopf.operator`, serves the liveness
and metrics endpoints for the whole process, and, with leader election, runs
the runtime only while this process holds the Lease (:mod:`auth0_rotator.leader`).
The same code path serves the console script, the demo and in-process tests.

Leadership lost means: stop kopf (which cancels every reconcile), then raise
:class:`LeadershipLost`; the console script exits non-zero so Kubernetes
restarts the pod, which comes back as a standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import kopf
from kubernetes.aio import client as aio_client

from auth0_rotator import handlers
from auth0_rotator.access import DEFAULT_ALLOWED_DOMAINS, DomainAllowList
from auth0_rotator.endpoints import Endpoint, serve
from auth0_rotator.leader import LeaderElector, LeaseConfig
from auth0_rotator.logs import configure_logging
from auth0_rotator.metrics import Metrics
from auth0_rotator.settings import EngineSettings

__all__ = ["LeadershipLost", "OperatorOptions", "run_operator"]

log = logging.getLogger(__name__)


class LeadershipLost(RuntimeError):
    """The Lease was lost while acting; the process must restart as a standby."""


@dataclass(frozen=True)
class OperatorOptions:
    """How one operator process runs."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means all namespaces."""

    log_format: str = "human"
    """``human`` or ``json`` log lines."""

    verbose: bool = False
    """Debug logging."""

    liveness: Endpoint | None = None
    """Where the liveness probe is served (standby and leader alike)."""

    metrics: Endpoint | None = None
    """Where Prometheus metrics are served."""

    leader_election: LeaseConfig | None = None
    """Act only while holding this Lease; ``None`` acts at once (one process only!)."""

    engine: EngineSettings = field(default_factory=EngineSettings)
    """Identity, clock and timeouts of the rotation engine."""

    workers: int = 4
    """Concurrent reconciles."""

    extra_ca_file: str | None = None
    """CA bundle trusted for every tenant besides the system CAs (local fake tenants)."""

    allowed_domains: tuple[str, ...] = DEFAULT_ALLOWED_DOMAINS
    """Tenant domains credentials may be sent to (see :class:`DomainAllowList`)."""

    auth0_deadline: float = 30.0
    """Seconds for one whole Auth0 request (connect, send, the complete answer)."""


_WATCHED = ("auth0clientsecrets", "auth0tenants", "clusterauth0tenants", "secrets")
"""Resources kopf watches for us (see handlers); each needs a live watch stream."""
_WATCH_GRACE = 30.0
"""Seconds a new leader gets to open its watch streams before liveness expects them."""


def _watch_streams() -> dict[str, int]:
    """Live kopf watch-stream tasks per resource plural ("watcher for PLURAL.VERSION...@NS")."""
    alive: dict[str, int] = {}
    for task in asyncio.all_tasks():
        name = task.get_name()
        if name.startswith("watcher for ") and not task.done():
            plural = name.removeprefix("watcher for ").split(".", 1)[0]
            alive[plural] = alive.get(plural, 0) + 1
    return alive


class _Status:
    """What the liveness probe reports: the real health of the current role.

    A standby is alive while it keeps trying for the Lease. A leader is alive
    while kopf runs, our work queue runs without a reconcile stuck past its
    deadline, and a watch stream is open for every resource we watch (after a
    short grace period to open them). With namespace
    patterns only the cluster-scoped stream is required: matching namespaces
    may not exist yet.
    """

    def __init__(self, context: handlers.OperatorContext, patterns: bool) -> None:
        self.context = context
        self.patterns = patterns
        self.role = "starting"
        self.task: asyncio.Task[Any] | None = None
        self.leading_since = 0.0

    def lead(self, task: asyncio.Task[Any]) -> None:
        """The runtime started in ``task``."""
        self.role, self.task, self.leading_since = "leader", task, time.monotonic()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(alive, details) for the probe's JSON answer."""
        details: dict[str, Any] = {"role": self.role}
        if self.task is not None and self.task.done():
            return False, {**details, "problem": f"{self.role} task ended"}
        if self.role != "leader":
            return True, details
        streams = _watch_streams()
        details["watchStreams"] = sum(streams.values())
        if time.monotonic() - self.leading_since < _WATCH_GRACE:
            return True, details
        required = ("clusterauth0tenants",) if self.patterns else _WATCHED
        missing = [plural for plural in required if not streams.get(plural)]
        if missing:
            return False, {**details, "problem": f"no watch stream for {', '.join(missing)}"}
        controller = self.context.controller
        if controller is None or not controller.alive:
            return False, {**details, "problem": "work queue stopped"}
        stuck = controller.stuck
        if stuck:
            names = ", ".join(f"{ns}/{name}" for ns, name in stuck[:5])
            return False, {**details, "problem": f"reconciles stuck past their deadline: {names}"}
        return True, details


async def run_operator(
    options: OperatorOptions,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    context: handlers.OperatorContext | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set or the process is signalled.

    ``context`` may be given by in-process callers (tests, the demo) that want
    to reach the controller; it is filled from ``options``. Raises
    :class:`LeadershipLost` when the Lease was lost while acting.
    """
    context = context or handlers.OperatorContext()
    context.engine_settings = options.engine
    context.workers = options.workers
    context.extra_ca_file = options.extra_ca_file
    context.namespaces = options.namespaces
    context.allowed_domains = DomainAllowList.parse(options.allowed_domains)
    context.auth0_deadline = options.auth0_deadline
    # Exact namespace names (or all namespaces) need no cluster scanning: the
    # CRDs exist before the operator starts (Helm installs them first), so kopf
    # needs no list/watch on CRDs or namespaces, and the chart grants none.
    context.scan_cluster = any(set(ns) & set("*?[!") for ns in options.namespaces)
    configure_logging(options.log_format, options.verbose)
    metrics = context.metrics = Metrics()
    loop = asyncio.get_running_loop()
    metrics.tasks = lambda: len(asyncio.all_tasks(loop))
    status = _Status(context, patterns=context.scan_cluster)
    runners = await serve(options.liveness, status.health, options.metrics, metrics.registry)
    try:
        if options.leader_election is None:
            metrics.leader.set(1)
            runtime = asyncio.ensure_future(_run_kopf(options, context, stop_flag, ready_flag))
            status.lead(runtime)
            await runtime
            return
        await _run_elected(
            options, options.leader_election, context, status, metrics, stop_flag, ready_flag
        )
    finally:
        metrics.leader.set(0)
        for runner in runners:
            await runner.cleanup()


async def _run_kopf(
    options: OperatorOptions,
    context: handlers.OperatorContext,
    stop_flag: asyncio.Event | threading.Event | None,
    ready_flag: asyncio.Event | threading.Event | None,
) -> None:
    await kopf.operator(
        registry=handlers.registry,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        # Single-active-instance is the Lease around this call (SPEC §6);
        # kopf peering is a priority freeze, not leader election.
        standalone=True,
        memo=kopf.Memo(context=context),
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


async def _stopped(stop_flag: asyncio.Event | threading.Event | None) -> None:
    """Wait for an external stop flag (never returns without one)."""
    if stop_flag is None:
        await asyncio.Event().wait()
    elif isinstance(stop_flag, asyncio.Event):
        await stop_flag.wait()
    else:
        while not stop_flag.is_set():  # noqa: ASYNC110 - a thread's flag: poll it
            await asyncio.sleep(0.2)


async def _run_elected(
    options: OperatorOptions,
    lease: LeaseConfig,
    context: handlers.OperatorContext,
    status: _Status,
    metrics: Metrics,
    stop_flag: asyncio.Event | threading.Event | None,
    ready_flag: asyncio.Event | threading.Event | None,
) -> None:
    api = aio_client.ApiClient(await handlers.cluster_configuration())
    elector = LeaderElector(api, lease)
    stop_wait = asyncio.ensure_future(_stopped(stop_flag))
    try:
        status.role = "standby"
        status.task = asyncio.ensure_future(elector.acquire())
        await asyncio.wait({status.task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not status.task.done():
            status.task.cancel()
            return  # stopped while waiting as a standby
        status.task.result()
        # The Lease proves whoever held it before has stopped acting (it gave
        # up within its renew deadline), so its rotation journals are ours now.
        context.engine_settings = replace(context.engine_settings, stale_journal_after=timedelta(0))
        metrics.leader.set(1)
        kopf_stop = asyncio.Event()
        runtime = asyncio.ensure_future(_run_kopf(options, context, kopf_stop, ready_flag))
        keeper = asyncio.ensure_future(elector.keep())
        status.lead(runtime)
        await asyncio.wait({runtime, keeper, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        kopf_stop.set()
        keeper_done = keeper.done()
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        try:
            await runtime
        finally:
            if keeper_done:
                raise LeadershipLost(f"lease {lease.namespace}/{lease.name} was lost")
            await elector.release()
    finally:
        stop_wait.cancel()
        await api.close()
