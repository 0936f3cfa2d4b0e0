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
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import kopf
from kubernetes.aio import client as aio_client

from auth0_rotator import handlers
from auth0_rotator.endpoints import Endpoint, serve
from auth0_rotator.engine import EngineSettings
from auth0_rotator.leader import LeaderElector, LeaseConfig
from auth0_rotator.metrics import Metrics

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


def _log_format(name: str) -> kopf.LogFormat:
    return kopf.LogFormat.JSON if name == "json" else kopf.LogFormat.FULL


class _Status:
    """What the liveness probe reports: alive while the current phase's task is."""

    def __init__(self) -> None:
        self.role = "starting"
        self.task: asyncio.Task[Any] | None = None

    def health(self) -> tuple[bool, dict[str, Any]]:
        alive = self.task is None or not self.task.done()
        return alive, {"role": self.role}


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
    # Exact namespace names (or all namespaces) need no cluster scanning: the
    # CRDs exist before the operator starts (Helm installs them first), so kopf
    # needs no list/watch on CRDs or namespaces, and the chart grants none.
    context.scan_cluster = any(set(ns) & set("*?[!") for ns in options.namespaces)
    kopf.configure(verbose=options.verbose, log_format=_log_format(options.log_format))
    logging.getLogger("auth0_rotator").setLevel(logging.DEBUG if options.verbose else logging.INFO)
    metrics = Metrics()
    status = _Status()
    runners = await serve(options.liveness, status.health, options.metrics, metrics.registry)
    try:
        if options.leader_election is None:
            metrics.leader.set(1)
            status.role = "leader"
            await _run_kopf(options, context, stop_flag, ready_flag)
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
        status.role = "leader"
        kopf_stop = asyncio.Event()
        runtime = asyncio.ensure_future(_run_kopf(options, context, kopf_stop, ready_flag))
        keeper = asyncio.ensure_future(elector.keep())
        status.task = runtime
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
