"""Which Auth0ClientSecrets wait for which workloads: rollouts tracked by watch events.

A rotation's restart targets roll out on their own time. Instead of polling
them, the :class:`~auth0_rotator.restarting.Restarter` notes here the
workloads a resource still waits for; a watch event about one of them
(:mod:`auth0_rotator.handlers`) queues exactly the resources waiting for it,
which then continue within moments of the rollout finishing. A slow poll
remains as the fallback for events missed across a watch reconnect.

Bounded: entries exist only for resources whose rollout is incomplete; they
go when it completes or the resource is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["RolloutWaiters", "Workload"]

Key = tuple[str, str]
"""``(namespace, name)`` of an Auth0ClientSecret."""

Workload = tuple[str, str, str]
"""``(namespace, kind, name)`` of a restart target."""


class RolloutWaiters:
    """An index from workloads to the resources waiting for their rollout."""

    def __init__(self) -> None:
        self._by_workload: dict[Workload, set[Key]] = {}
        self._by_resource: dict[Key, set[Workload]] = {}

    def wait(self, key: Key, workloads: Iterable[Workload]) -> None:
        """``key`` now waits for exactly ``workloads`` (replacing what it waited for)."""
        self.done(key)
        wanted = set(workloads)
        if not wanted:
            return
        self._by_resource[key] = wanted
        for workload in wanted:
            self._by_workload.setdefault(workload, set()).add(key)

    def done(self, key: Key) -> None:
        """``key`` waits for nothing (its rollout completed, or it was deleted)."""
        for workload in self._by_resource.pop(key, ()):
            keys = self._by_workload.get(workload)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_workload[workload]

    def waiting_for(self, workload: Workload) -> set[Key]:
        """The resources waiting for ``workload``'s rollout."""
        return set(self._by_workload.get(workload, ()))

    def __len__(self) -> int:
        return len(self._by_resource)
