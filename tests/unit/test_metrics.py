"""The per-resource condition series the chart's alerts fire on, from a status."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from auth0_rotator.metrics import Metrics

Key = tuple[str, frozenset[tuple[str, str]]]


def _samples(metrics: Metrics) -> dict[Key, float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _status(ready: str, reason: str, rollout: tuple[str, str] | None = None) -> dict[str, object]:
    conditions = [
        {
            "type": "Ready",
            "status": ready,
            "reason": reason,
            "lastTransitionTime": "2026-12-01T10:00:00Z",
        }
    ]
    if rollout is not None:
        conditions.append(
            {
                "type": "RolloutComplete",
                "status": rollout[0],
                "reason": rollout[1],
                "lastTransitionTime": "2026-12-01T11:00:00Z",
            }
        )
    return {"conditions": conditions}


def _key(name: str, labels: set[tuple[str, str]], **more: str) -> Key:
    return (name, frozenset(labels | set(more.items())))


def test_a_failing_resource_is_ready_0_with_its_reason_and_since_when() -> None:
    metrics = Metrics(wall_clock=lambda: 1_800_000_000.0)
    metrics.resource_seen("team-a", "app", _status("False", "InsufficientScope"))
    metrics.resource_seen("team-b", "web", _status("True", "Rotated", ("False", "RolloutStalled")))
    found = _samples(metrics)
    a = {("namespace", "team-a"), ("name", "app")}
    b = {("namespace", "team-b"), ("name", "web")}
    ready = "auth0_rotator_resource_ready"
    assert found[_key(ready, a, reason="InsufficientScope")] == 0
    assert found[_key(ready, b, reason="Rotated")] == 1
    assert (
        found[_key(f"{ready}_transition_timestamp_seconds", a)] == 1_796_119_200.0
    )  # 2026-12-01T10:00:00Z
    rollout = "auth0_rotator_resource_rollout_complete"
    assert found[_key(rollout, b, reason="RolloutStalled")] == 0
    assert found[_key(f"{rollout}_transition_timestamp_seconds", b)] == 1_796_122_800.0
    # No restart targets, no RolloutComplete series; a deleted resource's series go away.
    assert not [k for k in found if k[0].startswith(rollout) and a <= k[1]]
    metrics.resource_gone("team-a", "app")
    assert not [k for k in _samples(metrics) if a <= k[1]]
