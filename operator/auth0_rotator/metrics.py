"""Prometheus metrics of one operator process (names prefixed ``auth0_rotator_``).

Every metric lives in a registry of the process's own (not the library's
global one), so several operators can run in one test process. Labels are
bounded: never a secret, a value-derived string or anything unbounded.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from auth0_rotator import __version__

__all__ = ["Metrics"]


class Metrics:
    """The metrics registry and the series the runtime updates."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
