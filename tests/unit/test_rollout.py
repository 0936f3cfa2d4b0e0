"""Rollout readiness per kind, revision bookkeeping and selector strings."""

from __future__ import annotations

from typing import Any

from auth0_rotator.labels import REVISION_ANNOTATION, selector_string
from auth0_rotator.rollout import merged_revisions, rollout_state


def _deployment(annotation: str | None, **status: Any) -> dict[str, Any]:
    annotations = {REVISION_ANNOTATION: annotation} if annotation else {}
    return {
        "kind": "Deployment",
        "metadata": {"name": "web", "generation": 3},
        "spec": {"replicas": 2, "template": {"metadata": {"annotations": annotations}}},
        "status": {"observedGeneration": 3, **status},
    }


def test_deployment_is_ready_only_when_every_replica_is_updated_and_available() -> None:
    done = {"updatedReplicas": 2, "availableReplicas": 2, "replicas": 2}
    assert rollout_state(_deployment("r1", **done), "r1").ready
    assert not rollout_state(_deployment("r1", **{**done, "replicas": 3}), "r1").ready
    assert not rollout_state(_deployment("r0", **done), "r1").ready


def test_restarted_revision_is_only_ever_this_resources_own_id() -> None:
    state = rollout_state(_deployment("a1,b1"), "a2", previous="a1")
    assert state.restarted_revision == "a1"
    assert rollout_state(_deployment("b1"), "a2", previous="a1").restarted_revision is None
    assert rollout_state(_deployment("a2,b1"), "a2").restarted_revision == "a2"


def test_merging_replaces_only_this_resources_previous_id() -> None:
    assert merged_revisions("a1,b1", "a2", "a1") == "a2,b1"
    assert merged_revisions(None, "a1", None) == "a1"
    assert merged_revisions("a1,b1", "a2", None) == "a1,a2,b1"


def test_on_delete_statefulset_is_flagged() -> None:
    sts = {
        "kind": "StatefulSet",
        "metadata": {"name": "db", "generation": 1},
        "spec": {"replicas": 1, "updateStrategy": {"type": "OnDelete"}, "template": {}},
        "status": {},
    }
    assert rollout_state(sts, "r1").on_delete


def test_selector_strings() -> None:
    assert selector_string({}) == ""
    assert (
        selector_string(
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["a", "b"]},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            }
        )
        == "app=web,tier in (a,b),!legacy"
    )
