"""Crash safety (SPEC §3): SIGKILL the operator at every journal phase, restart, converge.

Real operator processes (``auth0-rotator run``) watch ``c-*`` namespaces; the
engine's test hook (``AUTH0_ROTATOR_TEST_CRASH_AT``) makes the process SIGKILL
itself at an exact point between two persisted steps.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from auth0_rotator.keypairs import generate_private_key
from auth0_rotator.rotation.staging import staging_secret_name
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator_dev.devcluster import ControlPlane
from tests.integration.operator.harness import (
    FakeTenant,
    Kube,
    OperatorProcess,
    a0cs_body,
    make_tenant,
    wait_for,
)

POINTS = {
    "Generate": [
        "prestaged",
        "claimed",
        "staged",
        "auth0-written",
        "applied",
        "verified",
        "secret-written",
    ],
    "Rotate": ["claimed", "auth0-written", "applied", "verified", "secret-written"],
}


@pytest.mark.reliability("SIGKILL at every journal phase (both strategies), then restart")
@pytest.mark.parametrize(
    ("strategy", "point"),
    [(s, p) for s, points in POINTS.items() for p in points],
)
def test_kill_at_each_phase_then_restart_converges_without_loss_or_double_rotation(
    strategy: str,
    point: str,
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    kube: Kube,
    app_id: str,
    processes: list[OperatorProcess],
    tmp_path: Path,
    figures: dict[str, float | str],
) -> None:
    doomed = OperatorProcess(control_plane, fake_tenant, tmp_path, "op", crash_at=point)
    processes.append(doomed)
    kube.create(crash_ns, a0cs_body("app", app_id, strategy=strategy))
    kube.wait_ready(crash_ns, "app", reason="Fetched")

    kube.annotate_rotate(crash_ns, "app", "crash")
    code = doomed.wait_killed()
    assert code == -signal.SIGKILL, doomed.log.read_text()[-2000:]
    journal = (kube.get(crash_ns, "app").get("status") or {}).get("rotation")
    if point == "prestaged":
        # Staged, not claimed: the restarted process finds a leftover staging Secret.
        assert not journal, "nothing is claimed before the claim"
        assert kube.secret(crash_ns, staging_secret_name("app")) is not None
    elif point != "secret-written":
        assert journal, "the kill must leave an unfinished journal"

    processes.append(OperatorProcess(control_plane, fake_tenant, tmp_path, "op"))
    status = kube.wait_ready(crash_ns, "app", reason="Rotated", timeout=90)

    current = fake_tenant.client(app_id)
    data = kube.secret(crash_ns, "app")
    assert data is not None
    figures["lost secrets"] = int(data["client_secret"] != current["client_secret"])
    figures["doubled rotations"] = max(current["secret_changes"] - 1, 0)
    assert data["client_secret"] == current["client_secret"], "Secret must hold what Auth0 accepts"
    assert current["secret_changes"] == 1, (
        f"{strategy} changed the secret {current['secret_changes']}x"
    )
    assert status["rotationCount"] == 1
    assert status["lastRotateRequest"] == "crash"
    # The staging Secret is deleted right after completion.
    wait_for(lambda: kube.secret(crash_ns, staging_secret_name("app")) is None, 10, "staging gone")


ANNOUNCE_POINTS = [
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


@pytest.mark.reliability("announced rotation crash matrix: SIGKILL at every phase, then restart")
@pytest.mark.parametrize("point", ANNOUNCE_POINTS)
def test_announced_rotation_killed_at_each_phase_converges_once_without_a_next_key(
    point: str,
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    kube: Kube,
    app_id: str,
    processes: list[OperatorProcess],
    tmp_path: Path,
    figures: dict[str, float | str],
) -> None:
    doomed = OperatorProcess(control_plane, fake_tenant, tmp_path, "op", crash_at=point)
    processes.append(doomed)
    spec = {"announce": True, "keys": {"previousClientSecret": "previous_client_secret"}}
    kube.create(crash_ns, a0cs_body("app", app_id, **spec))
    kube.wait_ready(crash_ns, "app", reason="Fetched")
    old = fake_tenant.client(app_id)["client_secret"]
    kube.annotate_rotate(crash_ns, "app", "crash")
    assert doomed.wait_killed() == -signal.SIGKILL, doomed.log.read_text()[-2000:]

    processes.append(OperatorProcess(control_plane, fake_tenant, tmp_path, "op"))
    status = kube.wait_ready(crash_ns, "app", reason="Rotated", timeout=90)
    current = fake_tenant.client(app_id)
    data = kube.secret(crash_ns, "app")
    assert data is not None
    figures["lost secrets"] = int(data["client_secret"] != current["client_secret"])
    figures["doubled rotations"] = max(current["secret_changes"] - 1, 0)
    figures["next keys left"] = int("next_client_secret" in data)
    assert data["client_secret"] == current["client_secret"] != old
    assert current["secret_changes"] == 1
    assert "next_client_secret" not in data and data["previous_client_secret"] == old
    assert status["rotationCount"] == 1 and status["lastRotateRequest"] == "crash"
    wait_for(lambda: kube.secret(crash_ns, staging_secret_name("app")) is None, 10, "staging gone")


KEYPAIR_POINTS = [
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


@pytest.mark.reliability("KeyPair crash matrix: SIGKILL at every phase, then restart")
@pytest.mark.parametrize("point", KEYPAIR_POINTS)
def test_keypair_killed_at_each_phase_converges_with_one_key_and_no_orphan(
    point: str,
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    kube: Kube,
    processes: list[OperatorProcess],
    tmp_path: Path,
    figures: dict[str, float | str],
) -> None:
    first = generate_private_key(2048)
    client_id, (initial,) = fake_tenant.create_jwt_client(first)
    doomed = OperatorProcess(control_plane, fake_tenant, tmp_path, "op", crash_at=point)
    processes.append(doomed)
    spec = {"strategy": "KeyPair", "keyPair": {"adoptCredentialIds": [initial["id"]]}}
    kube.create(crash_ns, a0cs_body("app", client_id, **spec))
    code = doomed.wait_killed()
    assert code == -signal.SIGKILL, doomed.log.read_text()[-2000:]
    assert (kube.get(crash_ns, "app").get("status") or {}).get("rotation"), "an open journal"

    processes.append(OperatorProcess(control_plane, fake_tenant, tmp_path, "op"))
    status = kube.wait_ready(crash_ns, "app", reason="Rotated", timeout=90)

    state = fake_tenant.client(client_id)
    credentials, enabled = state["credentials"], state["enabled_credentials"]
    calls = fake_tenant.calls(client_id)
    registered = [c for c in calls if c["endpoint"] == "create-credential" and c["status"] == 201]
    refused = [c for c in calls if c["endpoint"] == "patch-client" and c["status"] >= 400]
    figures["orphan credentials"] = len(credentials) - 1
    figures["keys registered twice"] = len(registered) - 1
    figures["lost secrets"] = 0
    data = kube.secret(crash_ns, "app")
    assert data is not None
    works = fake_tenant.token_status(client_id, SecretValue(data["private_key"]))
    figures["lost secrets"] = int(works != 200)
    assert works == 200, "the Secret must hold a key Auth0 accepts"
    assert len(credentials) == 1 and enabled == [credentials[0]["id"]], credentials
    assert credentials[0]["id"] != initial["id"] and data["key_id"] == credentials[0]["kid"]
    assert len(registered) == 1, f"registered {len(registered)}x"
    assert refused == [], "never more than two enabled (Auth0 refuses a third)"
    assert status["credential"]["id"] == credentials[0]["id"]
    assert fake_tenant.token_status(client_id, first) == 401
    wait_for(lambda: kube.secret(crash_ns, staging_secret_name("app")) is None, 10, "staging gone")


def _condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == ctype), {})


@pytest.mark.reliability("two operator processes racing on one trigger (no Lease)")
def test_two_operator_processes_racing_on_one_trigger_make_one_change(
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    kube: Kube,
    app_id: str,
    processes: list[OperatorProcess],
    tmp_path: Path,
) -> None:
    processes.append(OperatorProcess(control_plane, fake_tenant, tmp_path, "alpha"))
    processes.append(OperatorProcess(control_plane, fake_tenant, tmp_path, "beta"))
    kube.create(crash_ns, a0cs_body("app", app_id))
    # Both fetch at creation (a fetch changes nothing in Auth0, so it takes no claim):
    # when their Secret writes and status writes interleave, the later one sees the
    # other's write as drift and adopts it ("Restored"). Either way the Secret is right.
    status = kube.wait_ready(crash_ns, "app")
    assert _condition(status, "Ready")["reason"] in ("Fetched", "Restored"), status
    assert fake_tenant.client(app_id)["secret_changes"] == 0
    for n in range(3):
        kube.annotate_rotate(crash_ns, "app", f"race-{n}")

        def finished(count: int = n + 1) -> bool:
            status = kube.get(crash_ns, "app").get("status") or {}
            return bool(status.get("rotationCount") == count and not status.get("rotation"))

        wait_for(finished, 60, f"rotation {n + 1}")
    time.sleep(2)
    assert fake_tenant.client(app_id)["secret_changes"] == 3
    data = kube.secret(crash_ns, "app")
    assert data is not None and data["client_secret"] == fake_tenant.client(app_id)["client_secret"]


@pytest.mark.reliability("restarting the operator rotates nothing")
def test_restarting_the_operator_rotates_nothing(
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    kube: Kube,
    app_id: str,
    processes: list[OperatorProcess],
    tmp_path: Path,
) -> None:
    first = OperatorProcess(control_plane, fake_tenant, tmp_path, "op")
    processes.append(first)
    kube.create(crash_ns, a0cs_body("app", app_id, schedule="0 3 * * *", initialization="Rotate"))
    before = kube.wait_ready(crash_ns, "app", reason="Rotated")
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait(timeout=10)
    calls_before = len(fake_tenant.calls(app_id))

    second = OperatorProcess(control_plane, fake_tenant, tmp_path, "op")
    processes.append(second)
    wait_for(lambda: "auth0-rotator started" in second.log.read_text(), 30, "restart")
    time.sleep(5)  # every resource is reconciled at start-up

    after = kube.get(crash_ns, "app")["status"]
    assert after["rotationCount"] == before["rotationCount"] == 1
    assert after["secretRevision"] == before["secretRevision"]
    assert fake_tenant.client(app_id)["secret_changes"] == 1
    changes = [
        c
        for c in fake_tenant.calls(app_id)[calls_before:]
        if c["endpoint"] in ("patch-client", "rotate-secret")
    ]
    assert changes == []


@pytest.mark.parametrize("point", ["secret-written", "delivered"])
def test_kill_between_the_secret_write_and_the_auth0_side_writes_converges(
    point: str,
    api: client.ApiClient,
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    kube: Kube,
    app_id: str,
    processes: list[OperatorProcess],
    tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    m2m = f"m2m-{suffix}"
    scopes = ["read:client_keys", "update:client_keys", "update:rules_configs"]
    scopes += ["read:actions", "update:actions", "create:actions"]
    make_tenant(api, crash_ns, "targets", m2m, fake_tenant.create_client(m2m, scopes))
    action, key = f"act-{suffix}", f"KEY_{suffix}"
    fake_tenant.create_action(action, {"OTHER": "kept"})
    targets = [
        {"rulesConfig": {"key": key}},
        {"actionSecret": {"actionId": action, "name": "API_SECRET"}},
    ]
    doomed = OperatorProcess(control_plane, fake_tenant, tmp_path, "op", crash_at=point)
    processes.append(doomed)
    spec = {"tenantRef": {"name": "targets"}, "auth0Targets": targets}
    kube.create(crash_ns, a0cs_body("app", app_id, **spec))
    kube.wait_ready(crash_ns, "app", reason="Fetched")

    kube.annotate_rotate(crash_ns, "app", "crash")
    assert doomed.wait_killed() == -signal.SIGKILL, doomed.log.read_text()[-2000:]
    assert (kube.get(crash_ns, "app").get("status") or {}).get("rotation")

    processes.append(OperatorProcess(control_plane, fake_tenant, tmp_path, "op"))
    status = kube.wait_ready(crash_ns, "app", reason="Rotated", timeout=90)

    value = fake_tenant.client(app_id)["client_secret"]
    assert fake_tenant.client(app_id)["secret_changes"] == 1
    data = kube.secret(crash_ns, "app")
    assert data is not None and data["client_secret"] == value
    assert fake_tenant.rules_configs()[key] == value
    assert fake_tenant.action(action)["secrets"] == {"OTHER": "kept", "API_SECRET": value}
    assert fake_tenant.action(action)["all_changes_deployed"] is True
    assert status["rotationCount"] == 1
