"""SPEC §2 trigger rules as a pure function of spec, status, Secret and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auth0_rotator.decisions import SecretState, decide
from auth0_rotator.model import ClientSecretSpec
from auth0_rotator.schedule import format_time

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OK = SecretState(exists=True, owned=True, resource_version="7", complete=True)


def _spec(**spec: Any) -> ClientSecretSpec:
    return ClientSecretSpec.parse(
        {"metadata": {"namespace": "ns", "name": "app"}, "spec": {"clientId": "cid", **spec}}
    )


def _settled(spec: ClientSecretSpec, **status: Any) -> dict[str, Any]:
    """Status of a resource that was initialized and is idle."""
    base: dict[str, Any] = {
        "clientRef": spec.client_ref,
        "specHash": spec.spec_hash,
        "secretName": spec.secret_name,
        "secretResourceVersion": "7",
    }
    if spec.schedule is not None:
        base["schedule"] = f"{spec.schedule.expression}@{spec.schedule.tz}"
        base["nextRotationTime"] = format_time(spec.schedule.next_fire_time(NOW))
    return {**base, **status}


def test_creation_fetches_by_default_and_consumes_the_initial_state() -> None:
    spec = _spec()
    d = decide(spec, {}, None, SecretState(exists=False), NOW)
    assert (d.action, d.trigger) == ("fetch", "initialization")
    assert d.consume["clientRef"] == spec.client_ref


def test_creation_rotates_with_initialization_rotate() -> None:
    d = decide(_spec(initialization="Rotate"), {}, None, SecretState(exists=False), NOW)
    assert (d.action, d.trigger) == ("rotate", "initialization")


def test_an_annotation_present_at_creation_is_not_a_second_trigger() -> None:
    d = decide(_spec(initialization="Rotate"), {}, "123", SecretState(exists=False), NOW)
    assert d.consume["lastRotateRequest"] == "123"


def test_new_annotation_value_rotates_and_is_recorded_at_claim() -> None:
    spec = _spec()
    d = decide(spec, _settled(spec, lastRotateRequest="1"), "2", OK, NOW)
    assert (d.action, d.trigger) == ("rotate", "annotation")
    assert d.consume["lastRotateRequest"] == "2"


def test_handled_annotation_value_does_nothing() -> None:
    spec = _spec()
    assert decide(spec, _settled(spec, lastRotateRequest="1"), "1", OK, NOW).action == "idle"


def test_forced_rotation_ignores_min_interval() -> None:
    spec = _spec(minInterval="24h")
    status = _settled(spec, lastRotationTime=format_time(NOW - timedelta(minutes=1)))
    assert decide(spec, status, "go", OK, NOW).action == "rotate"


def test_unfinished_journal_resumes_first_even_when_suspended() -> None:
    spec = _spec(suspend=True)
    status = _settled(spec, rotation={"id": "r1", "phase": "Applied", "trigger": "schedule"})
    assert decide(spec, status, "new", OK, NOW).action == "resume"


def test_suspend_blocks_forced_rotations() -> None:
    spec = _spec(suspend=True)
    d = decide(spec, _settled(spec), "new", OK, NOW)
    assert (d.action, d.reason) == ("idle", "Suspended")


@pytest.mark.parametrize(
    "change", [{"strategy": "Rotate"}, {"secretName": "other"}, {"keys": {"clientId": ""}}]
)
def test_credential_relevant_spec_change_rotates(change: dict[str, Any]) -> None:
    old = _spec()
    new = _spec(**change)
    d = decide(new, _settled(old), None, OK, NOW)
    assert (d.action, d.trigger) == ("rotate", "spec-change")
    assert d.consume["specHash"] == new.spec_hash


@pytest.mark.parametrize(
    "change",
    [
        {"restartTargets": [{"kind": "Deployment", "name": "x"}]},
        {"verify": False},
        {"minInterval": "5h"},
        {"secretTemplate": {"labels": {"a": "b"}}},
    ],
)
def test_other_spec_changes_do_not_rotate(change: dict[str, Any]) -> None:
    old = _spec()
    assert decide(_spec(**change), _settled(old), None, OK, NOW).action == "idle"


def test_spec_change_within_min_interval_relocates_and_waits() -> None:
    old = _spec()
    new = _spec(secretName="moved")
    last = NOW - timedelta(minutes=10)
    d = decide(new, _settled(old, lastRotationTime=format_time(last)), None, OK, NOW)
    assert d.action == "relocate"
    assert d.wake_at == last + timedelta(hours=1)


def test_client_change_adopts_as_initialization_says() -> None:
    old = _spec()
    d = decide(_spec(clientId="other"), _settled(old), None, OK, NOW)
    assert (d.action, d.trigger) == ("fetch", "initialization")


def test_due_schedule_rotates_once_and_moves_to_the_next_fire_after_now() -> None:
    spec = _spec(schedule="*/5 * * * *", minInterval="1m")
    missed = format_time(NOW - timedelta(minutes=31))
    d = decide(spec, _settled(spec, nextRotationTime=missed), None, OK, NOW)
    assert (d.action, d.trigger) == ("rotate", "schedule")
    assert d.consume["nextRotationTime"] == format_time(NOW + timedelta(minutes=5))


def test_min_interval_holds_a_due_schedule() -> None:
    spec = _spec(schedule="* * * * *", minInterval="2h")
    status = _settled(
        spec,
        nextRotationTime=format_time(NOW - timedelta(minutes=1)),
        lastRotationTime=format_time(NOW - timedelta(minutes=30)),
    )
    d = decide(spec, status, None, OK, NOW)
    assert (d.action, d.reason) == ("idle", "MinInterval")
    assert d.wake_at == NOW + timedelta(minutes=90)


def test_schedule_edit_recomputes_next_fire_without_rotating() -> None:
    old = _spec(schedule="0 3 * * *")
    new = _spec(schedule="30 4 * * *")
    d = decide(new, _settled(old), None, OK, NOW)
    assert d.action == "idle"
    assert d.consume["nextRotationTime"] == "2026-06-02T04:30:00Z"


def test_removed_schedule_clears_next_rotation_time() -> None:
    scheduled = _settled(_spec(schedule="0 3 * * *"))
    d = decide(_spec(), scheduled, None, OK, NOW)
    assert d.action == "idle"
    assert d.consume == {"nextRotationTime": None, "schedule": None}


@pytest.mark.parametrize(
    "secret",
    [
        SecretState(exists=False),
        SecretState(exists=True, owned=True, resource_version="8", complete=True),
        SecretState(exists=True, owned=True, resource_version="7", complete=False),
    ],
    ids=["deleted", "edited", "key-removed"],
)
def test_drift_is_restored_by_fetching(secret: SecretState) -> None:
    spec = _spec()
    d = decide(spec, _settled(spec), None, secret, NOW)
    assert (d.action, d.trigger) == ("fetch", "drift")


def test_idle_resource_wakes_at_its_next_fire_and_nothing_else() -> None:
    spec = _spec(schedule="0 3 * * *")
    d = decide(spec, _settled(spec), None, OK, NOW)
    assert d.action == "idle"
    assert d.consume == {}
    assert d.wake_at == datetime(2026, 6, 2, 3, 0, tzinfo=UTC)


def test_annotation_set_together_with_a_client_change_still_rotates_after_adoption() -> None:
    old = _spec()
    d = decide(_spec(clientId="other"), _settled(old, lastRotateRequest="1"), "2", OK, NOW)
    assert d.action == "fetch"
    assert "lastRotateRequest" not in d.consume
