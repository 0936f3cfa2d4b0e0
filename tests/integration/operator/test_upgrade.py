"""Upgrading with open journals: what the previous release left half done, this one finishes.

The on-cluster journal format (``status.rotation``) is a contract between
releases. For each journal phase of both strategies, the code of the release
before the engine's redesign (:data:`UPGRADE_FROM`, pinned, taken from this
repository's history) runs until it SIGKILLs itself at that phase; then this
checkout's operator takes over and must finish: exactly one Auth0 change, the
Secret holds what Auth0 accepts, and the restarted Deployment rolls out.
"""

from __future__ import annotations

import signal
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from auth0_rotator_dev.devcluster import ControlPlane
from tests.conftest import REPO
from tests.integration.operator.harness import (
    FakeTenant,
    Kube,
    OperatorProcess,
    a0cs_body,
    make_deployment,
    make_tenant,
    wait_for,
)

UPGRADE_FROM = "4a9617aa1737b344f88441e7b4579ff78c49478f"
"""The last commit before the journal driver and strategy modules (this file's subject)."""

CASES = [
    # (strategy, the old release's crash point, the phase it leaves in status.rotation)
    ("Generate", "prestaged", None),
    ("Generate", "staged", "Staged"),
    ("Generate", "auth0-written", "Staged"),
    ("Generate", "verified", "Verified"),
    ("Generate", "secret-written", "Verified"),
    ("Generate", "delivered", "Delivering"),
    ("Rotate", "claimed", "Claimed"),
    ("Rotate", "auth0-written", "Requested"),
    ("Rotate", "applied", "Requested"),
    ("Rotate", "verified", "Verified"),
    ("Rotate", "secret-written", "Verified"),
]


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``operator/`` folder of :data:`UPGRADE_FROM`, extracted from git history."""
    where = tmp_path_factory.mktemp("previous-release")
    archive = where / "operator.tar"
    done = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "archive",
            "--format=tar",
            "-o",
            str(archive),
            UPGRADE_FROM,
            "operator/auth0_rotator",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, (
        f"commit {UPGRADE_FROM} is not in this clone's history ({done.stderr.strip()}): "
        "the upgrade test needs a full clone (not a shallow one)"
    )
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    return where / "operator"


@pytest.fixture
def web(api: client.ApiClient, crash_ns: str) -> str:
    """A one-replica Deployment the rotation restarts."""
    make_deployment(api, crash_ns, "web")
    return "web"


def _targets_tenant(api: client.ApiClient, fake: FakeTenant, namespace: str) -> dict[str, Any]:
    """A tenant whose M2M may write rules configs, and a spec delivering to one."""
    m2m = f"m2m-up-{namespace}"
    scopes = ["read:client_keys", "update:client_keys", "update:rules_configs"]
    make_tenant(api, namespace, "targets", m2m, fake.create_client(m2m, scopes))
    return {
        "tenantRef": {"name": "targets"},
        "auth0Targets": [{"rulesConfig": {"key": f"K_{namespace.replace('-', '_')}"}}],
    }


@pytest.mark.reliability("upgrade with open journals: the previous release killed at each phase")
@pytest.mark.parametrize(("strategy", "point", "phase"), CASES)
def test_a_journal_left_by_the_previous_release_is_finished_once(
    strategy: str,
    point: str,
    phase: str | None,
    previous_release: Path,
    api: client.ApiClient,
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    web: str,
    kube: Kube,
    app_id: str,
    processes: list[OperatorProcess],
    tmp_path: Path,
    figures: dict[str, float | str],
) -> None:
    spec: dict[str, Any] = {
        "strategy": strategy,
        "restartTargets": [{"kind": "Deployment", "name": web}],
    }
    if point == "delivered":
        spec = {**spec, **_targets_tenant(api, fake_tenant, crash_ns)}
    old = OperatorProcess(
        control_plane, fake_tenant, tmp_path, "upgrade", crash_at=point, code=previous_release
    )
    processes.append(old)
    kube.create(crash_ns, a0cs_body("app", app_id, **spec))
    kube.wait_ready(crash_ns, "app", reason="Fetched")
    kube.annotate_rotate(crash_ns, "app", "upgrade")
    assert old.wait_killed() == -signal.SIGKILL, old.log.read_text()[-2000:]
    journal = (kube.get(crash_ns, "app").get("status") or {}).get("rotation") or {}
    assert journal.get("phase") == phase, journal

    processes.append(OperatorProcess(control_plane, fake_tenant, tmp_path, "upgrade"))
    status = kube.wait_ready(crash_ns, "app", reason="Rotated", timeout=90)
    current = fake_tenant.client(app_id)
    data = kube.secret(crash_ns, "app") or {}
    figures["lost secrets"] = int(data.get("client_secret") != current["client_secret"])
    figures["doubled rotations"] = max(current["secret_changes"] - 1, 0)
    assert data.get("client_secret") == current["client_secret"]
    assert current["secret_changes"] == 1
    assert status["rotationCount"] == 1 and status["lastRotateRequest"] == "upgrade"

    def rolled_out() -> bool:
        conditions = (kube.get(crash_ns, "app").get("status") or {}).get("conditions") or []
        return any(c["type"] == "RolloutComplete" and c["status"] == "True" for c in conditions)

    wait_for(rolled_out, 60, "RolloutComplete")
