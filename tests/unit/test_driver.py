"""The journal driver and the strategies, phase by phase, without a server.

The Kubernetes adapter and the Auth0 client are stood in for by small fakes
that keep state in memory (status merge patches with resourceVersion checks,
owned Secrets, Auth0's current secret and call counts). Each test drives a
journal from a phase and checks what a crash-safe rotation must do there:
which calls Auth0 got (exactly one change), which phases were persisted, which
crash points were passed, and what the target Secret holds at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from auth0_rotator.auth0 import InvalidCredentials, InvalidRequest, OutcomeUnknown
from auth0_rotator.journal import Phase
from auth0_rotator.kube import Conflict
from auth0_rotator.reporting import Stop
from auth0_rotator.rotation import driver as driver_module
from auth0_rotator.rotation import tail as tail_module
from auth0_rotator.rotation.staging import staging_secret_name
from auth0_rotator.secretvalue import SecretValue
from tests.unit.rotation_world import NEW, OLD, OWNER, FakeAuth0, FakeStore, World, journal_at


@pytest.fixture(autouse=True)
def _points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    seen: list[str] = []
    monkeypatch.setattr(driver_module, "reached", seen.append)
    monkeypatch.setattr(tail_module, "reached", seen.append)
    yield seen


async def test_generate_stages_before_the_claim_and_changes_auth0_once(_points: list[str]) -> None:
    world = World("Generate")
    await world.start()
    assert _points == [
        "prestaged",
        "claimed",
        "staged",
        "auth0-written",
        "applied",
        "verified",
        "secret-written",
    ]
    assert world.auth0.changes == 1
    assert world.store.value_of("app", "client_secret") == world.auth0.secret
    assert world.phase() is None and world.store.obj["status"]["rotationCount"] == 1
    assert staging_secret_name("app") in world.store.deleted
    assert world.store.events[:1] == ["RotationStarted"] and "Rotated" in world.store.events


async def test_rotate_remembers_the_value_before_then_requests_once(_points: list[str]) -> None:
    world = World("Rotate")
    await world.start()
    assert _points == [
        "claimed",
        "requested",
        "auth0-written",
        "applied",
        "verified",
        "secret-written",
    ]
    assert (world.auth0.rotations, world.auth0.changes) == (1, 1)
    assert world.store.value_of("app", "client_secret") == world.auth0.secret


async def test_a_lost_claim_removes_what_it_staged_and_changes_nothing() -> None:
    world = World("Generate")
    world.store.conflict_next_claim = True
    with pytest.raises(Conflict):
        await world.start()
    assert staging_secret_name("app") in world.store.deleted
    assert world.auth0.changes == 0 and world.phase() is None


async def test_generate_resumed_at_staged_sets_the_staged_value_again() -> None:
    journal = journal_at("Generate", Phase.STAGED)
    world = World("Generate", journal)
    await world.driver.staging.stage(OWNER, journal.id, value=SecretValue(NEW))
    world.auth0.secret = NEW  # it was set before the crash
    await world.resume()
    assert world.auth0.changes == 0  # the same value again: no second change
    assert world.store.value_of("app", "client_secret") == NEW


async def test_rotate_with_an_unknown_outcome_reads_the_value_back() -> None:
    world = World("Rotate")
    world.auth0.rotate_outcome = OutcomeUnknown("answer lost")
    await world.start()
    assert (world.auth0.rotations, world.auth0.changes) == (1, 1)
    assert world.store.value_of("app", "client_secret") == world.auth0.secret
    rotated = [e for e in world.store.events if e == "Rotated"]
    assert rotated  # closed, with the recovery in its message (checked by the journal test)


async def test_rotate_resumed_when_the_request_had_no_effect_goes_back_to_claimed() -> None:
    journal = journal_at("Rotate", Phase.REQUESTED)
    world = World("Rotate", journal)
    await world.driver.staging.stage(OWNER, journal.id, previous=SecretValue(OLD))
    with pytest.raises(Stop):
        await world.resume()  # Auth0 still holds the previous value: not rotated
    assert world.phase() == "Claimed" and world.auth0.rotations == 0
    await world.resume()
    assert (world.auth0.rotations, world.auth0.changes) == (1, 1)
    assert world.phase() is None


async def test_rotate_without_read_access_rotates_once_more_then_refuses() -> None:
    journal = journal_at("Rotate", Phase.REQUESTED)
    world = World("Rotate", journal)
    world.auth0.readable = False
    await world.resume()
    assert world.auth0.rotations == 1 and "OutcomeUnknown" in world.store.events
    second = World("Rotate", journal_at("Rotate", Phase.REQUESTED, rerotated=True))
    second.auth0.readable = False
    with pytest.raises(Stop):
        await second.resume()
    assert second.auth0.rotations == 0
    ready = next(c for c in second.store.obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "OutcomeUnknown"


async def test_a_refused_rotate_secret_goes_back_to_claimed_and_waits() -> None:
    world = World("Rotate")
    world.auth0.rotate_commits = False
    world.auth0.rotate_outcome = InvalidRequest("refused", status=400)
    with pytest.raises(Stop):
        await world.start()
    status = world.store.obj["status"]
    assert status["rotation"]["phase"] == "Claimed" and status["rotation"]["retryAt"]
    assert world.auth0.changes == 0
    await world.resume()  # before retryAt: nothing
    assert world.auth0.rotations == 1


async def test_a_failed_verification_persists_applied_and_never_sets_the_value_again() -> None:
    world = World("Generate")
    world.auth0.accepts = False
    with pytest.raises(Stop):
        await world.start()
    assert world.phase() == "Applied" and world.auth0.changes == 1
    world.auth0.accepts = True
    await world.resume()
    assert world.auth0.changes == 1 and world.phase() is None


async def test_another_live_holder_is_left_alone_and_a_stale_one_taken_over() -> None:
    world = World("Generate", journal_at("Generate", Phase.STAGED, holder="other"))
    world.store.obj["status"]["rotation"]["renewedAt"] = "2026-12-01T11:58:00Z"
    await world.resume()
    assert world.phase() == "Staged" and world.auth0.changes == 0
    world.store.obj["status"]["rotation"]["renewedAt"] = "2026-12-01T11:50:00Z"
    await world.resume()  # stale for 10 minutes: taken over and finished
    assert world.phase() is None and world.auth0.changes == 1


async def test_a_journal_of_an_unknown_strategy_is_reported_not_guessed() -> None:
    world = World("Generate", journal_at("KeyPairFromTheFuture", Phase.CLAIMED))
    with pytest.raises(Stop):
        await world.resume()
    ready = next(c for c in world.store.obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec" and "KeyPairFromTheFuture" in ready["message"]
    assert world.auth0.changes == 0


class _Interleaved(FakeAuth0):
    """Auth0 whose secret change coincides with another writer's change of the resource."""

    def __init__(self, store: FakeStore, status: dict[str, Any] | None) -> None:
        super().__init__()
        self.store, self.status = store, status

    async def set_client_secret(self, client_id: str, value: SecretValue) -> None:
        await super().set_client_secret(client_id, value)
        self.store.someone_writes(self.status)


async def test_a_harmless_change_meanwhile_does_not_stop_a_journal_write() -> None:
    world = World("Generate")
    world.auth0 = _Interleaved(world.store, None)  # someone annotates the resource
    await world.start()
    assert world.phase() is None and world.auth0.changes == 1
    assert world.store.value_of("app", "client_secret") == world.auth0.secret


async def test_a_journal_taken_over_meanwhile_stops_the_old_holder() -> None:
    world = World("Generate")
    takeover = {"rotation": {"holder": "someone-else", "renewedAt": "2026-12-01T12:00:00Z"}}
    world.auth0 = _Interleaved(world.store, takeover)
    with pytest.raises(Conflict):
        await world.start()
    assert world.phase() == "Staged" and world.store.value_of("app", "client_secret") is None


async def test_new_tenant_credentials_release_a_refused_journal_at_once() -> None:
    # Found by the soak: a tenant whose credentials Secret was broken, then fixed,
    # left an announced rotation held until the 10-minute recheck.
    world = World("Generate")
    world.auth0.refused = InvalidCredentials("the management client was refused")
    with pytest.raises(Stop):
        await world.start()
    assert world.phase() == "Staged" and world.auth0.changes == 0
    world.auth0.refused = None  # Auth0 would accept now, but nothing changed for us
    await world.resume()
    assert world.phase() == "Staged", "the same credentials wait for the failure's wake time"
    fixed = FakeAuth0(world.auth0.secret)  # new tenant credentials: a new client
    world.auth0 = fixed
    await world.resume()
    assert world.phase() is None and fixed.changes == 1


async def test_new_tenant_credentials_end_the_wait_of_a_refused_rotate_secret() -> None:
    # Found by the soak: with Rotate, the refused request's persisted retryAt (10 minutes
    # for a refused management client) outlived the fixed credentials.
    world = World("Rotate")
    world.auth0.rotate_commits = False
    world.auth0.rotate_outcome = InvalidCredentials("the management client was refused")
    with pytest.raises(Stop):
        await world.start()
    assert world.phase() == "Claimed" and world.store.obj["status"]["rotation"]["retryAt"]
    await world.resume()
    assert world.auth0.rotations == 1, "the same credentials wait for retryAt"
    fixed = FakeAuth0(world.auth0.secret)  # new tenant credentials: a new client
    world.auth0 = fixed
    await world.resume()
    assert world.phase() is None and fixed.rotations == 1 and fixed.changes == 1
