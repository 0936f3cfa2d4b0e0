"""Announced ``Generate`` (``announce: true``) phase by phase, without a server.

SPEC §8: the next value is published beside the current one, the targets
roll out with it, and only then does Auth0 change; a stall waits with Auth0
untouched; the next key never outlives the journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from auth0_rotator.journal import Phase
from auth0_rotator.model import ClientSecretSpec
from auth0_rotator.reporting import Stop
from auth0_rotator.rotation import announce as announce_module
from auth0_rotator.rotation import driver as driver_module
from auth0_rotator.rotation import tail as tail_module
from auth0_rotator.rotation.staging import staging_secret_name
from auth0_rotator.secretvalue import SecretValue
from tests.unit.rotation_world import OLD, OWNER, World

STALLED: tuple[list[dict[str, Any]], list[tuple[str, str]]] = (
    [],
    [("TargetNotFound", "Deployment web not found in ns")],
)


@pytest.fixture(autouse=True)
def points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    seen: list[str] = []
    for module in (driver_module, tail_module, announce_module):
        monkeypatch.setattr(module, "reached", seen.append)
    yield seen


async def _world(**spec: Any) -> World:
    world = World("Generate", announce=True, keys={"previousClientSecret": "previous"}, **spec)
    # The Secret as a Fetch left it: the current secret.
    await world.store.write_owned_secret(
        OWNER, "app", {"client_secret": SecretValue(OLD)}, labels={}, annotations={}
    )
    return world


def _data(world: World) -> dict[str, str | None]:
    keys = ("client_secret", "next_client_secret", "previous")
    return {k: world.store.value_of("app", k) for k in keys}


async def test_the_next_value_is_published_before_auth0_changes(points: list[str]) -> None:
    world = await _world()
    await world.start()
    assert points == [
        "prestaged",
        "claimed",
        "staged",
        "next-written",
        "announced",
        "auth0-written",
        "applied",
        "verified",
        "secret-written",
    ]
    assert world.auth0.changes == 1
    assert _data(world) == {
        "client_secret": world.auth0.secret,
        "next_client_secret": None,  # gone once the journal closes
        "previous": OLD,
    }
    assert world.phase() is None and world.store.obj["status"]["rotationCount"] == 1
    assert (
        world.store.obj["status"]["restartRevision"] == world.store.obj["status"]["secretRevision"]
    )
    assert staging_secret_name("app") in world.store.deleted


async def test_a_stalled_announcement_waits_with_auth0_untouched_until_announce_is_off() -> None:
    world = await _world(restartTargets=[{"kind": "Deployment", "name": "web"}])

    async def stalled(*_: Any, **__: Any) -> Any:
        return STALLED

    world.driver.restarter.read = stalled  # type: ignore[method-assign]
    with pytest.raises(Stop):
        await world.start()
    assert world.phase() == "Announced" and world.auth0.changes == 0
    data = _data(world)
    assert data["client_secret"] == OLD and data["next_client_secret"] not in (None, OLD)
    status = world.store.obj["status"]
    assert status["restartRevision"].endswith(".announce")
    rotating = next(c for c in status["conditions"] if c["type"] == "Rotating")
    assert rotating["reason"] == "WaitingForRollout"
    assert "Auth0 is unchanged" in rotating["message"] and "not found" in rotating["message"]
    # The documented way out that keeps the rotation: announce off ends the wait.
    world.spec = ClientSecretSpec.parse(
        {**world.store.obj, "spec": {**world.store.obj["spec"], "announce": False}}
    )
    await world.resume()  # the final restart is tracked after the close, as for Generate
    assert world.auth0.changes == 1 and world.auth0.secret == data["next_client_secret"]
    assert world.phase() is None and _data(world)["next_client_secret"] is None


async def test_staging_lost_after_the_announcement_sets_the_published_value() -> None:
    world = await _world(restartTargets=[{"kind": "Deployment", "name": "web"}])

    async def stalled(*_: Any, **__: Any) -> Any:
        return STALLED

    world.driver.restarter.read = stalled  # type: ignore[method-assign]
    with pytest.raises(Stop):
        await world.start()
    published = _data(world)["next_client_secret"]
    del world.store.secrets[staging_secret_name("app")]
    world.driver.staging.forget(OWNER)

    async def found(*_: Any, **__: Any) -> Any:
        return [], []

    world.driver.restarter.read = found  # type: ignore[method-assign]
    world.spec = ClientSecretSpec.parse(world.store.obj)
    await world.resume()
    assert world.auth0.secret == published and world.auth0.changes == 1
    assert world.phase() is None


def test_announce_changes_no_spec_hash_and_is_refused_with_other_strategies() -> None:
    def parse(**spec: Any) -> ClientSecretSpec:
        return ClientSecretSpec.parse(
            {"metadata": {"namespace": "ns", "name": "app"}, "spec": {"clientId": "c", **spec}}
        )

    assert parse(announce=True).spec_hash == parse().spec_hash
    assert parse(announce=True).rotation_strategy == "Announce"
    assert parse(keys={"nextClientSecret": "n"}).spec_hash != parse().spec_hash
    from auth0_rotator.model import SpecError

    with pytest.raises(SpecError, match=r"spec\.announce"):
        parse(announce=True, strategy="Rotate")
    # A next key that names the current one would overwrite it before Auth0 switches.
    with pytest.raises(SpecError, match="distinct"):
        parse(announce=True, keys={"nextClientSecret": "client_secret"})
    assert parse(keys={"nextClientSecret": "client_secret"}).rotation_strategy == "Generate"
    assert Phase.ANNOUNCED.value == "Announced"
