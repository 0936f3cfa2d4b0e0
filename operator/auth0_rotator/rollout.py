"""Restarting workloads after a rotation, and telling when their rollout is complete.

Level-based, so it is crash-safe by construction: once the target Secret holds
a rotation's value, every reconcile makes sure each restart target's pod
template carries that rotation id (``auth0rotator.dev/secret-revision``, a
strategic-merge patch that is idempotent), and reads each target's rollout
state. Nothing here can undo or delay the Secret write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auth0_rotator.labels import REVISION_ANNOTATION

__all__ = ["TargetState", "merged_revisions", "revisions", "rollout_state"]


@dataclass(frozen=True)
class TargetState:
    """One restart target as seen now."""

    kind: str
    name: str
    restarted_revision: str | None
    ready: bool
    paused: bool = False
    on_delete: bool = False
    """The workload's update strategy is OnDelete: a template change replaces no pod."""

    def as_status(self) -> dict[str, Any]:
        """The ``status.targets[]`` entry."""
        return {
            "kind": self.kind,
            "name": self.name,
            "restartedRevision": self.restarted_revision,
            "ready": self.ready,
        }


def revisions(value: str | None) -> list[str]:
    """Rotation ids in a secret-revision annotation.

    One resource targeting a workload writes exactly its rotation id; several
    resources targeting the same workload each keep their own id in a sorted,
    comma-separated list, so they never undo each other's restart.
    """
    return [v for v in (value or "").split(",") if v]


def merged_revisions(value: str | None, new: str, replaces: str | None) -> str:
    """The annotation value with ``new`` in place of this resource's previous id."""
    kept = {v for v in revisions(value) if v != replaces}
    return ",".join(sorted(kept | {new}))


def rollout_state(
    workload: dict[str, Any], revision: str, previous: str | None = None
) -> TargetState:
    """Whether ``workload`` runs pods of ``revision`` everywhere, as its kind defines it.

    ``restarted_revision`` is only ever this resource's own id: ``revision`` once
    applied, else ``previous`` (its last applied id) while that is still there.
    """
    kind = workload["kind"]
    meta, spec = workload.get("metadata") or {}, workload.get("spec") or {}
    status = workload.get("status") or {}
    template_meta = (spec.get("template") or {}).get("metadata") or {}
    current = revisions((template_meta.get("annotations") or {}).get(REVISION_ANNOTATION))
    if revision in current:
        restarted: str | None = revision
    else:
        restarted = previous if previous in current else None
    observed = (status.get("observedGeneration") or 0) >= (meta.get("generation") or 0)
    if kind == "Deployment":
        want = spec.get("replicas", 1)
        done = (
            observed
            and status.get("updatedReplicas", 0) == want
            and status.get("availableReplicas", 0) == want
            and status.get("replicas", 0) == want
        )
    elif kind == "StatefulSet":
        want = spec.get("replicas", 1)
        done = (
            observed
            and status.get("updatedReplicas", 0) == want
            and status.get("readyReplicas", 0) == want
            and status.get("currentRevision") == status.get("updateRevision")
        )
    else:  # DaemonSet
        want = status.get("desiredNumberScheduled", 0)
        done = (
            observed
            and status.get("updatedNumberScheduled", 0) == want
            and status.get("numberAvailable", 0) == want
        )
    return TargetState(
        kind=kind,
        name=str(meta.get("name")),
        restarted_revision=restarted,
        ready=bool(done) and restarted == revision,
        paused=bool(spec.get("paused")),
        on_delete=(spec.get("updateStrategy") or {}).get("type") == "OnDelete",
    )
