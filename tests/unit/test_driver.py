"""The journal driver and the strategies, phase by phase, without a server.

The Kubernetes adapter and the Auth0 client are stood in for by small fakes
that keep state in memory (status merge patches with resourceVersion checks,
owned Secrets, Auth0's current secret and call counts). Each test drives a
journal from a phase and checks what a crash-safe rotation must do there:
which calls Auth0 got (exactly one change), which phases were persisted, which
crash points were passed, and what the target Secret holds at the end.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from auth0_rotator.auth0 import Auth0Client, InvalidRequest, OutcomeUnknown
from auth0_rotator.decisions import Decision
from auth0_rotator.fetching import TargetSecrets
from auth0_rotator.journal import Phase, RotationJournal
from auth0_rotator.kube import Conflict, KubeStore, OwnerInfo, SecretConflict
from auth0_rotator.labels import MANAGED_BY, OWNER_ANNOTATION, OWNER_UID_ANNOTATION, ROLE_LABEL
from auth0_rotator.model import ClientSecretSpec, TenantRef, TenantSpec
from auth0_rotator.reporting import Reporter, Stop, _merged
from auth0_rotator.restarting import Restarter
from auth0_rotator.rotation import STRATEGIES
from auth0_rotator.rotation import driver as driver_module
from auth0_rotator.rotation.driver import JournalDriver
from auth0_rotator.rotation.staging import staging_secret_name
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator.settings import EngineSettings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OWNER = OwnerInfo("ns", "app", "uid-1")
OLD, NEW = "o" * 64, "n" * 64


class FakeStore:
    """Status patches and owned Secrets in memory, as the API server would keep them."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.secrets: dict[str, dict[str, Any]] = {}
        self.versions = itertools.count(100)
        self.conflict_next_claim = False
        self.events: list[str] = []
        self.deleted: list[str] = []

    # status -----------------------------------------------------------------------
    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        meta = self.obj["metadata"]
        if resource_version is not None and (
            self.conflict_next_claim or resource_version != meta["resourceVersion"]
        ):
            self.conflict_next_claim = False
            raise Conflict("changed")
        self.obj = {
            **self.obj,
            "metadata": {**meta, "resourceVersion": str(next(self.versions))},
            "status": _merged(self.obj.get("status") or {}, status),
        }
        return self.obj

    def expect_echo(self, *_: Any) -> None:
        pass

    async def get_client_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self.obj

    def someone_writes(self, status: dict[str, Any] | None = None) -> None:
        """Another writer changes the object (an annotation, or ``status``) meanwhile."""
        meta = {**self.obj["metadata"], "resourceVersion": str(next(self.versions))}
        merged = _merged(self.obj.get("status") or {}, status or {})
        self.obj = {**self.obj, "metadata": meta, "status": merged}

    async def post_event(self, obj: Any, kind: str, reason: str, message: str, now: Any) -> None:
        self.events.append(reason)

    @contextlib.contextmanager
    def holding_events(self) -> Iterator[None]:
        yield

    # Secrets ----------------------------------------------------------------------
    async def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.secrets.get(name)

    async def write_owned_secret(
        self,
        owner: OwnerInfo,
        name: str,
        values: dict[str, Any],
        *,
        labels: dict[str, str],
        annotations: dict[str, str],
        role: str = "target",
        create_only: bool = False,
        **_: Any,
    ) -> str:
        existing = self.secrets.get(name)
        if existing is not None and create_only:
            raise Conflict("exists")
        if existing is not None and not KubeStore.is_owned_by(existing, owner):
            raise SecretConflict(owner.namespace, name, None)
        data = dict((existing or {}).get("data") or {}) if role == "staging" else {}
        for key, value in values.items():
            raw = value.reveal() if isinstance(value, SecretValue) else value
            data[key] = base64.b64encode(raw.encode()).decode()
        version = str(next(self.versions))
        self.secrets[name] = {
            "metadata": {
                "resourceVersion": version,
                "labels": {**labels, **MANAGED_BY, ROLE_LABEL: role},
                "annotations": {
                    **annotations,
                    OWNER_ANNOTATION: owner.ref,
                    OWNER_UID_ANNOTATION: owner.uid,
                },
            },
            "data": data,
        }
        return version

    async def delete_owned_secret(self, owner: OwnerInfo, name: str, **_: Any) -> None:
        if self.secrets.pop(name, None) is not None:
            self.deleted.append(name)

    def value_of(self, name: str, key: str) -> str | None:
        raw = ((self.secrets.get(name) or {}).get("data") or {}).get(key)
        return None if raw is None else base64.b64decode(raw).decode()


class FakeAuth0:
    """Auth0 as far as the strategies use it: one client's secret, calls counted."""

    def __init__(self, secret: str = OLD) -> None:
        self.secret = secret
        self.changes = 0
        self.rotations = 0
        self.rotate_outcome: Exception | None = None
        self.rotate_commits = True
        self.readable = True
        self.accepts = True

    async def set_client_secret(self, client_id: str, value: SecretValue) -> None:
        if value.reveal() != self.secret:
            self.secret, self.changes = value.reveal(), self.changes + 1

    async def rotate_client_secret(self, client_id: str) -> SecretValue:
        self.rotations += 1
        if self.rotate_commits:
            self.secret, self.changes = f"r{self.rotations}" * 32, self.changes + 1
        if self.rotate_outcome is not None:
            outcome, self.rotate_outcome = self.rotate_outcome, None
            raise outcome
        return SecretValue(self.secret)

    async def get_client_secret(self, client_id: str) -> SecretValue:
        if not self.readable:
            from auth0_rotator.auth0 import InsufficientScope

            raise InsufficientScope("no read:client_keys", scopes=("read:client_keys",))
        return SecretValue(self.secret)

    async def verify_client_secret(self, client_id: str, value: SecretValue, **_: Any) -> bool:
        return self.accepts and value.reveal() == self.secret


def _resource(strategy: str, journal: RotationJournal | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"rotationCount": 0}
    if journal is not None:
        status["rotation"] = {k: v for k, v in journal.as_status().items() if v is not None}
    return {
        "metadata": {
            "namespace": "ns",
            "name": "app",
            "uid": "uid-1",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {"clientId": "app-client", "strategy": strategy},
        "status": status,
    }


class World:
    """A driver wired to the fakes, recording the crash points it passes."""

    def __init__(self, strategy: str, journal: RotationJournal | None = None) -> None:
        self.store = FakeStore(_resource(strategy, journal))
        self.auth0 = FakeAuth0()
        self.points: list[str] = []
        self.settings = EngineSettings(identity="me", clock=lambda: NOW)
        reporter = Reporter(cast(KubeStore, self.store), self.settings)
        store = cast(KubeStore, self.store)
        self.driver = JournalDriver(
            store,
            reporter,
            TargetSecrets(store, cast(Any, None), reporter, self.settings),
            Restarter(store, reporter, self.settings),
            STRATEGIES,
            self.settings,
        )
        self.spec = ClientSecretSpec.parse(self.store.obj)
        self.tenant = TenantSpec.parse(
            TenantRef("Auth0Tenant", "default", "ns"),
            {"spec": {"domain": "acme.auth0.com", "credentials": {"secretRef": {"name": "c"}}}},
        )

    def phase(self) -> str | None:
        return ((self.store.obj.get("status") or {}).get("rotation") or {}).get("phase")

    async def start(self) -> None:
        await self.driver.start(
            self.store.obj,
            self.spec,
            Decision("rotate", trigger="annotation", consume={"lastRotateRequest": "x"}),
            OWNER,
            self.tenant,
            cast(Auth0Client, self.auth0),
            self.store.secrets.get("app"),
        )

    async def resume(self) -> None:
        async def connect(spec: ClientSecretSpec) -> tuple[TenantSpec, Auth0Client]:
            return self.tenant, cast(Auth0Client, self.auth0)

        await self.driver.resume(
            self.store.obj, self.spec, OWNER, self.store.secrets.get("app"), connect
        )


@pytest.fixture(autouse=True)
def _points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    seen: list[str] = []
    monkeypatch.setattr(driver_module, "reached", seen.append)
    yield seen


def _journal(strategy: str, phase: Phase, holder: str = "me", **changes: Any) -> RotationJournal:
    journal = RotationJournal.start(
        trigger="annotation",
        strategy=strategy,
        client_id="app-client",
        tenant="Auth0Tenant/default",
        holder=holder,
        now=NOW - timedelta(minutes=1),
    )
    return journal.at(phase, NOW - timedelta(minutes=1), **changes)


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
    journal = _journal("Generate", Phase.STAGED)
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
    journal = _journal("Rotate", Phase.REQUESTED)
    world = World("Rotate", journal)
    await world.driver.staging.stage(OWNER, journal.id, previous=SecretValue(OLD))
    with pytest.raises(Stop):
        await world.resume()  # Auth0 still holds the previous value: not rotated
    assert world.phase() == "Claimed" and world.auth0.rotations == 0
    await world.resume()
    assert (world.auth0.rotations, world.auth0.changes) == (1, 1)
    assert world.phase() is None


async def test_rotate_without_read_access_rotates_once_more_then_refuses() -> None:
    journal = _journal("Rotate", Phase.REQUESTED)
    world = World("Rotate", journal)
    world.auth0.readable = False
    await world.resume()
    assert world.auth0.rotations == 1 and "OutcomeUnknown" in world.store.events
    second = World("Rotate", _journal("Rotate", Phase.REQUESTED, rerotated=True))
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
    world = World("Generate", _journal("Generate", Phase.STAGED, holder="other"))
    world.store.obj["status"]["rotation"]["renewedAt"] = "2026-12-01T11:58:00Z"
    await world.resume()
    assert world.phase() == "Staged" and world.auth0.changes == 0
    world.store.obj["status"]["rotation"]["renewedAt"] = "2026-12-01T11:50:00Z"
    await world.resume()  # stale for 10 minutes: taken over and finished
    assert world.phase() is None and world.auth0.changes == 1


async def test_a_journal_of_an_unknown_strategy_is_reported_not_guessed() -> None:
    world = World("Generate", _journal("KeyPairFromTheFuture", Phase.CLAIMED))
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
