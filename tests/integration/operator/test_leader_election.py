"""Single active instance (SPEC §6): the Lease elector and operator processes behind it.

The elector is exercised directly against the real kube-apiserver with short
timings; then real ``auth0-rotator run --leader-elect`` processes show that a
standby never acts, takes over when the leader stops, and that a leader whose
Lease is taken stops acting and exits.
"""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.aio import client as aio_client

from auth0_rotator.leader import LeaderElector, LeaseConfig
from auth0_rotator_dev.devcluster import ControlPlane
from auth0_rotator_dev.devcluster.cluster import free_port
from tests.integration.operator.harness import (
    FakeTenant,
    Kube,
    OperatorProcess,
    a0cs_body,
    wait_for,
)

# -- the elector on its own --------------------------------------------------------------


def _lease(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    lease = client.CoordinationV1Api(api).read_namespaced_lease(name, namespace)
    spec = lease.spec
    return {"holder": spec.holder_identity, "transitions": spec.lease_transitions}


def _leading(elector: LeaderElector) -> bool:
    return elector.is_leader


def _config(namespace: str, name: str, identity: str) -> LeaseConfig:
    return LeaseConfig(
        name, namespace, identity, lease_duration=3.0, renew_deadline=2.0, retry_period=0.5
    )


async def test_a_held_lease_is_refused_a_released_one_is_taken_at_once(
    aio_api: aio_client.ApiClient, api: client.ApiClient, namespace: str
) -> None:
    alpha = LeaderElector(aio_api, _config(namespace, "lock", "alpha"))
    beta = LeaderElector(aio_api, _config(namespace, "lock", "beta"))

    await alpha.acquire()
    assert alpha.is_leader
    assert _lease(api, namespace, "lock") == {"holder": "alpha", "transitions": 0}
    assert not await beta._try_acquire_or_renew()
    assert (beta.is_leader, beta.holder) == (False, "alpha")
    assert await alpha._try_acquire_or_renew(), "the holder renews"

    await alpha.release()
    assert alpha.holder == "alpha" and not _leading(alpha)
    assert _lease(api, namespace, "lock")["holder"] is None
    assert await beta._try_acquire_or_renew(), "a released Lease is free at once"
    assert _lease(api, namespace, "lock") == {"holder": "beta", "transitions": 1}
    assert not await alpha._try_acquire_or_renew()


async def test_an_unrenewed_lease_is_taken_only_after_it_stopped_changing(
    aio_api: aio_client.ApiClient, api: client.ApiClient, namespace: str
) -> None:
    alpha = LeaderElector(aio_api, _config(namespace, "lock", "alpha"))
    beta = LeaderElector(aio_api, _config(namespace, "lock", "beta"))
    await alpha.acquire()
    refused_while_renewed = 0
    for _ in range(4):  # alpha renews between beta's tries: never expired for beta
        assert await alpha._try_acquire_or_renew()
        refused_while_renewed += not await beta._try_acquire_or_renew()
    assert refused_while_renewed == 4

    # alpha goes silent (no release): beta waits out the lease duration, then takes it.
    await beta.acquire()
    assert _lease(api, namespace, "lock") == {"holder": "beta", "transitions": 1}
    # alpha's keep() notices somebody else holds it and gives up leadership.
    await alpha.keep()
    assert not _leading(alpha) and alpha.holder == "beta"


def test_lease_settings_must_leave_room_between_renewal_and_expiry() -> None:
    with pytest.raises(ValueError, match="must exceed the renew deadline"):
        LeaseConfig("l", "ns", "me", lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError, match="retry period"):
        LeaseConfig("l", "ns", "me", lease_duration=15, renew_deadline=2, retry_period=2)


# -- operator processes -------------------------------------------------------------------


class Probes:
    """The liveness and metrics endpoints of one operator process."""

    def __init__(self) -> None:
        self.health_port, self.metrics_port = free_port(), free_port()

    def args(self) -> list[str]:
        return [
            "--liveness",
            f"http://127.0.0.1:{self.health_port}/healthz",
            "--metrics",
            f"127.0.0.1:{self.metrics_port}",
        ]

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as response:
                data: dict[str, Any] = json.loads(response.read())
                return data
        except (urllib.error.URLError, OSError):
            return None

    def leader(self) -> float | None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2
            ) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError):
            return None
        for line in text.splitlines():
            if line.startswith("auth0_rotator_leader "):
                return float(line.split()[1])
        return None


def _elected(
    plane: ControlPlane,
    fake: FakeTenant,
    log_dir: Path,
    identity: str,
    lease_ns: str,
    lease: str,
    probes: Probes,
) -> OperatorProcess:
    return OperatorProcess(
        plane,
        fake,
        log_dir,
        identity,
        args=[
            "--leader-elect",
            "--lease-name",
            lease,
            "--lease-namespace",
            lease_ns,
            "--lease-duration",
            "4",
            "--renew-deadline",
            "3",
            "--retry-period",
            "0.5",
            *probes.args(),
        ],
    )


def _rotations_done(kube: Kube, namespace: str, count: int) -> bool:
    status = kube.get(namespace, "app").get("status") or {}
    return bool(status.get("rotationCount") == count and not status.get("rotation"))


def test_only_the_leader_acts_and_the_standby_takes_over_when_it_stops(
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    kube: Kube,
    app_id: str,
    processes: list[OperatorProcess],
    tmp_path: Path,
) -> None:
    lease = f"rotator-{uuid.uuid4().hex[:6]}"
    alpha_probes, beta_probes = Probes(), Probes()
    alpha = _elected(control_plane, fake_tenant, tmp_path, "alpha", crash_ns, lease, alpha_probes)
    processes.append(alpha)
    wait_for(lambda: alpha_probes.leader() == 1.0, 30, "alpha leads")
    beta = _elected(control_plane, fake_tenant, tmp_path, "beta", crash_ns, lease, beta_probes)
    processes.append(beta)
    standby = wait_for(beta_probes.health, 30, "beta's liveness")
    assert standby == {"status": "ok", "role": "standby"}
    assert beta_probes.leader() == 0.0

    kube.create(crash_ns, a0cs_body("app", app_id))
    kube.wait_ready(crash_ns, "app", reason="Fetched")
    for n in range(3):
        kube.annotate_rotate(crash_ns, "app", f"ha-{n}")
        wait_for(partial(_rotations_done, kube, crash_ns, n + 1), 60, f"rotation {n + 1}")
    assert fake_tenant.client(app_id)["secret_changes"] == 3
    beta_log = beta.log.read_text()
    assert "standby: lease" in beta_log and "held by alpha" in beta_log
    assert "auth0-rotator started" not in beta_log, "a standby must not start the runtime"

    alpha.stop()
    assert alpha.proc.returncode == 0
    assert "released lease" in alpha.log.read_text()
    wait_for(lambda: beta_probes.leader() == 1.0, 30, "beta takes over")
    health = beta_probes.health()
    assert health is not None and (health["status"], health["role"]) == ("ok", "leader")
    assert (
        client.CoordinationV1Api(kube.api)
        .read_namespaced_lease(lease, crash_ns)
        .spec.holder_identity
        == "beta"
    )
    kube.annotate_rotate(crash_ns, "app", "after-takeover")
    wait_for(lambda: _rotations_done(kube, crash_ns, 4), 60, "rotation by beta")
    current = fake_tenant.client(app_id)
    assert current["secret_changes"] == 4
    data = kube.secret(crash_ns, "app")
    assert data is not None and data["client_secret"] == current["client_secret"]


def test_a_leader_whose_lease_is_taken_stops_and_exits(
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    kube: Kube,
    processes: list[OperatorProcess],
    tmp_path: Path,
) -> None:
    lease = f"rotator-{uuid.uuid4().hex[:6]}"
    probes = Probes()
    alpha = _elected(control_plane, fake_tenant, tmp_path, "alpha", crash_ns, lease, probes)
    processes.append(alpha)
    wait_for(lambda: probes.leader() == 1.0, 30, "alpha leads")
    leases = client.CoordinationV1Api(kube.api)

    def take() -> bool:
        current = leases.read_namespaced_lease(lease, crash_ns)
        current.spec.holder_identity = "intruder"  # e.g. alpha was partitioned away
        try:
            leases.replace_namespaced_lease(lease, crash_ns, current)
        except client.ApiException as exc:
            if exc.status == 409:  # alpha renewed in between: read again
                return False
            raise
        return True

    wait_for(take, 30, "the lease taken from alpha")

    code = alpha.wait_killed(timeout=30)
    assert code == 1, alpha.log.read_text()[-2000:]
    log = alpha.log.read_text()
    assert "lost leadership" in log and "holder now: intruder" in log
    assert "released lease" not in log, "a lease somebody else holds is never released"
    assert signal.SIGKILL not in (code, -code)
