"""Start the kopf runtime with this operator's settings.

The decorated handlers live in :mod:`auth0_rotator.handlers`; this module only
wires options (scope, logging, liveness) into :func:`kopf.operator`, so the
same code path serves the console script, the demo and in-process tests.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

import kopf

from auth0_rotator import handlers
from auth0_rotator.engine import EngineSettings

__all__ = ["OperatorOptions", "run_operator"]


@dataclass(frozen=True)
class OperatorOptions:
    """How one operator process runs."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means all namespaces."""

    log_format: str = "human"
    """``human`` or ``json`` log lines."""

    verbose: bool = False
    """Debug logging."""

    liveness_endpoint: str | None = None
    """URL kopf serves its liveness probe on, e.g. ``http://127.0.0.1:8080/healthz``."""

    engine: EngineSettings = field(default_factory=EngineSettings)
    """Identity, clock and timeouts of the rotation engine."""

    workers: int = 4
    """Concurrent reconciles."""

    extra_ca_file: str | None = None
    """CA bundle trusted for every tenant besides the system CAs (local fake tenants)."""


def _log_format(name: str) -> kopf.LogFormat:
    return kopf.LogFormat.JSON if name == "json" else kopf.LogFormat.FULL


async def run_operator(
    options: OperatorOptions,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    context: handlers.OperatorContext | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set or the process is signalled.

    ``context`` may be given by in-process callers (tests, the demo) that want
    to reach the controller; it is filled from ``options``.
    """
    context = context or handlers.OperatorContext()
    context.engine_settings = options.engine
    context.workers = options.workers
    context.extra_ca_file = options.extra_ca_file
    kopf.configure(verbose=options.verbose, log_format=_log_format(options.log_format))
    logging.getLogger("auth0_rotator").setLevel(logging.DEBUG if options.verbose else logging.INFO)
    await kopf.operator(
        registry=handlers.registry,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        # Single-active-instance is a Lease in front of the runtime (SPEC §6);
        # kopf peering is a priority freeze, not leader election.
        standalone=True,
        liveness_endpoint=options.liveness_endpoint,
        memo=kopf.Memo(context=context),
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
