"""Strategy ``KeyPair`` phase by phase, without a server (see ``rotation_world``).

What SPEC §8 asks at each step: the client is checked before anything is
generated, a key is registered once (also when the answer was lost or the
process stopped after sending), the old key stays enabled until the rollout
is done, only our own (or adopted) keys are ever detached or deleted, and the
target Secret holds a private key whose public half is enabled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from auth0_rotator.journal import Phase
from auth0_rotator.keypairs import generate_private_key, public_key_pem
from auth0_rotator.kube import OwnerInfo
from auth0_rotator.reporting import Stop
from auth0_rotator.rotation import driver as driver_module
from auth0_rotator.rotation import keypair as keypair_module
from auth0_rotator.rotation import tail as tail_module
from auth0_rotator.rotation.keypair import credential_name, credential_prefix
from auth0_rotator.rotation.staging import staging_secret_name
from auth0_rotator.secretvalue import SecretValue
from tests.unit.rotation_world import OWNER, FakeCredential, FakeKeyAuth0, World, journal_at

FIRST = generate_private_key(2048)


@pytest.fixture(autouse=True)
def points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    seen: list[str] = []
    monkeypatch.setattr(driver_module, "reached", seen.append)
    monkeypatch.setattr(tail_module, "reached", seen.append)
    monkeypatch.setattr(keypair_module, "reached", seen.append)
    yield seen


def _credential(id: str, name: str) -> FakeCredential:
    return FakeCredential(id, name, f"kid-{id}", "RS256", public_key_pem(FIRST))


def _world(*enabled: FakeCredential, **spec: Any) -> tuple[World, FakeKeyAuth0]:
    world = World("KeyPair", **spec)
    auth0 = FakeKeyAuth0(list(enabled))
    world.auth0 = auth0
    return world, auth0


def _ready(world: World) -> dict[str, Any]:
    conditions = world.store.obj["status"].get("conditions") or []
    return next(c for c in conditions if c["type"] == "Ready")


OURS = credential_prefix(OWNER) + "20261101000000-aaaa"


async def test_a_rotation_overlaps_the_keys_then_retires_ours(points: list[str]) -> None:
    world, auth0 = _world(_credential("cred_old", OURS))
    await world.start()
    assert points == [
        "claimed",
        "staged",
        "key-registered",
        "registered",
        "auth0-written",
        "applied",
        "verified",
        "secret-written",
        "rolling-out",
        "retired",
    ]
    (new,) = auth0.credentials.values()
    assert auth0.enabled == [new.id] and auth0.registrations == 1
    private = world.store.value_of("app", "private_key")
    assert private is not None and public_key_pem(SecretValue(private)) == new.pem
    assert world.store.value_of("app", "key_id") == new.kid
    assert world.store.value_of("app", "algorithm") == "RS256"
    status = world.store.obj["status"]
    assert status["credential"] == {"id": new.id, "kid": new.kid, "name": new.name}
    assert new.name.startswith(credential_prefix(OWNER))
    assert world.phase() is None and status["rotationCount"] == 1
    assert staging_secret_name("app") in world.store.deleted
    assert _ready(world)["message"].startswith("rotated the key of client app-client")


async def test_a_key_the_operator_did_not_create_stays_unless_adopted() -> None:
    world, auth0 = _world(_credential("cred_manual", "set up by hand"))
    await world.start()
    assert len(auth0.enabled or ()) == 2 and "cred_manual" in (auth0.enabled or ())
    assert "cred_manual stays enabled" in _ready(world)["message"]
    adopted, auth0 = _world(
        _credential("cred_manual", "set up by hand"),
        keyPair={"adoptCredentialIds": ["cred_manual"]},
    )
    await adopted.start()
    assert "cred_manual" not in auth0.credentials and len(auth0.enabled or ()) == 1


async def test_a_client_at_its_limit_with_foreign_keys_changes_nothing() -> None:
    world, auth0 = _world(_credential("cred_a", "team a"), _credential("cred_b", OURS))
    with pytest.raises(Stop):
        await world.start()
    ready = _ready(world)
    assert ready["reason"] == "CredentialLimit"
    assert "cred_a was not created by this resource" in ready["message"]
    assert "spec.keyPair.adoptCredentialIds" in ready["message"]
    assert auth0.registrations == 0 and auth0.enabled == ["cred_a", "cred_b"]
    assert world.phase() == "Claimed"


async def test_a_client_on_client_secrets_is_an_auth_method_mismatch() -> None:
    world, auth0 = _world()
    auth0.enabled = None
    with pytest.raises(Stop):
        await world.start()
    ready = _ready(world)
    assert ready["reason"] == "AuthMethodMismatch"
    assert "client_secret_post" in ready["message"] and "Private Key JWT" in ready["message"]
    assert auth0.registrations == 0 and auth0.changes == 0


async def test_a_lost_register_answer_is_found_by_name_not_registered_again() -> None:
    world, auth0 = _world(_credential("cred_old", OURS))
    auth0.lose_register_answer = True
    await world.start()
    assert auth0.registrations == 1 and len(auth0.credentials) == 1


async def test_resumed_after_sending_register_it_looks_before_registering() -> None:
    journal = journal_at("KeyPair", Phase.STAGED)
    world, auth0 = _world(_credential("cred_old", OURS))
    world.store.obj["status"]["rotation"] = {
        k: v for k, v in journal.as_status().items() if v is not None
    }
    key = generate_private_key(2048)
    await world.driver.staging.stage(OWNER, journal.id, value=key, algorithm=SecretValue("RS256"))
    # The process registered the key, then stopped before journaling it.
    await auth0.register_credential(
        "app-client", name=credential_name(OWNER, journal.id), pem=public_key_pem(key), alg="RS256"
    )
    await world.resume()
    assert auth0.registrations == 1 and world.phase() is None
    assert world.store.value_of("app", "private_key") == key.reveal()


async def test_the_old_key_stays_enabled_while_the_rollout_is_not_complete() -> None:
    world, auth0 = _world(
        _credential("cred_old", OURS),
        restartTargets=[{"kind": "Deployment", "name": "web"}],
    )

    async def stalled(*_: Any, **__: Any) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        return [], [("TargetNotFound", "Deployment web not found in ns")]

    world.driver.restarter.read = stalled  # type: ignore[method-assign]
    with pytest.raises(Stop):
        await world.start()
    assert world.phase() == "RollingOut"
    assert "cred_old" in (auth0.enabled or ()) and len(auth0.enabled or ()) == 2
    rotating = next(c for c in world.store.obj["status"]["conditions"] if c["type"] == "Rotating")
    assert rotating["reason"] == "WaitingForRollout"
    assert "both keys are enabled" in rotating["message"]
    assert "Deployment web not found" in rotating["message"]


async def test_a_journal_abandoned_before_any_change_lets_a_new_strategy_take_over() -> None:
    journal = journal_at("KeyPair", Phase.CLAIMED)
    world, auth0 = _world()
    world.store.obj["status"]["rotation"] = {
        k: v for k, v in journal.as_status().items() if v is not None
    }
    world.spec = type(world.spec).parse({**world.store.obj, "spec": {"clientId": "app-client"}})
    await world.resume()
    assert world.phase() is None and auth0.registrations == 0
    assert "RotationAbandoned" in world.store.events


def test_credential_names_fit_auth0s_limit() -> None:
    assert len(credential_name(OWNER, "20261201120000-0123abcd")) <= 128
    uid = "0" * 36
    assert len(credential_name(OWNER.__class__("n" * 63, "m" * 253, uid), "2" * 23)) <= 128


async def test_a_new_key_detached_by_someone_during_the_rollout_is_enabled_again() -> None:
    class Detaching(FakeKeyAuth0):
        async def verify_private_key(self, client_id: str, key: SecretValue, **kw: Any) -> bool:
            accepted = await super().verify_private_key(client_id, key, **kw)
            self.enabled = ["cred_old"]  # a human "cleans up" the new key in the Dashboard
            return accepted

    world = World("KeyPair")
    auth0 = Detaching([_credential("cred_old", OURS)])
    world.auth0 = auth0
    await world.start()
    (new,) = auth0.credentials.values()
    assert auth0.enabled == [new.id]  # the key the Secret holds, and only it


async def test_created_again_after_a_delete_mid_rotation_it_retires_the_earlier_keys() -> None:
    """The soak's bug 4: the earlier resource left two enabled keys; not ``CredentialLimit``.

    Deleted during its rollout (both keys enabled, the Secret holding the new
    one) and created again: the Secret is taken back, so are the earlier
    resource's keys. The one the Secret does not hold is detached first, and
    every key of the earlier resource is gone once the new rotation closes.
    """
    earlier = OwnerInfo("ns", "app", "uid-0")
    older, newer, left = (
        _credential(i, f"auth0-rotator/uid-0/2026110{n}000000-aaaa")
        for n, i in enumerate(("cred_older", "cred_newer", "cred_left"), start=1)
    )
    world, auth0 = _world(older, newer, left)
    auth0.enabled = ["cred_older", "cred_newer"]
    await world.store.write_owned_secret(
        earlier,
        "app",
        {"private_key": FIRST, "key_id": newer.kid},
        labels={},
        annotations={},
    )
    await world.start()
    (new,) = auth0.credentials.values()
    assert new.name.startswith(credential_prefix(OWNER)) and auth0.enabled == [new.id]
    assert world.store.value_of("app", "key_id") == new.kid
    assert world.phase() is None and _ready(world)["reason"] == "Rotated"


async def test_two_enabled_keys_of_this_resource_itself_still_stop_at_the_limit() -> None:
    """Only an earlier resource's stale key is detached on its own; ours needs a human."""
    world, auth0 = _world(_credential("cred_a", OURS), _credential("cred_b", OURS + "b"))
    await world.store.write_owned_secret(
        OWNER, "app", {"private_key": FIRST, "key_id": "kid-cred_b"}, labels={}, annotations={}
    )
    with pytest.raises(Stop):
        await world.start()
    ready = _ready(world)
    assert ready["reason"] == "CredentialLimit" and "Both were registered" in ready["message"]
    assert auth0.enabled == ["cred_a", "cred_b"] and auth0.registrations == 0


async def test_an_earlier_resource_in_the_secret_never_lets_a_foreign_key_be_detached() -> None:
    """Whatever uid the Secret names, only keys named for that uid count as retirable.

    The Secret claims an earlier resource (as a restore or a forged annotation
    would); the client's other enabled key was set up by someone else: nothing
    is detached, and the resource stops at ``CredentialLimit`` naming that key.
    """
    earlier = OwnerInfo("ns", "app", "uid-0")
    theirs = _credential("cred_team_a", "team a")
    held = _credential("cred_held", "auth0-rotator/uid-0/20261101000000-aaaa")
    world, auth0 = _world(theirs, held)
    await world.store.write_owned_secret(
        earlier, "app", {"private_key": FIRST, "key_id": held.kid}, labels={}, annotations={}
    )
    with pytest.raises(Stop):
        await world.start()
    ready = _ready(world)
    assert (
        ready["reason"] == "CredentialLimit" and "cred_team_a was not created" in ready["message"]
    )
    assert auth0.enabled == ["cred_team_a", "cred_held"] and auth0.registrations == 0
    assert set(auth0.credentials) == {"cred_team_a", "cred_held"}
