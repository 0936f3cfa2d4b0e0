"""Kubernetes faults (RELIABILITY.md): an API server restart mid-rotation, conflict storms.

The restart runs on a control plane of its own (so the rest of the suite
never sees the outage), with a real operator process and the suite's fake
tenant. No trigger may be missed, none rotated twice, no value lost.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from auth0_rotator_dev.devcluster import ControlPlane
from tests.conftest import REPO, _kube_bin_dir
from tests.integration.operator.harness import (
    M2M_ID,
    M2M_SECRET,
    FakeTenant,
    Kube,
    OperatorProcess,
    fetched_apps,
    make_tenant,
    wait_for,
)

Figures = dict[str, float | str]


@pytest.fixture(scope="module")
def own_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A second control plane, only for the API-server restart."""
    plane = ControlPlane(_kube_bin_dir(), tmp_path_factory.mktemp("own-plane").resolve())
    plane.start()
    try:
        plane.kubectl_run("apply", "-f", str(REPO / "crds"))
        plane.kubectl_run("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        yield plane
    finally:
        plane.stop()


def _settled(kube: Kube, namespace: str, name: str, request: str) -> bool:
    status = kube.get(namespace, name).get("status") or {}
    return bool(status.get("lastRotateRequest") == request and not status.get("rotation"))


def _outcome(
    kube: Kube, fake: FakeTenant, namespace: str, clients: list[str], rounds: int
) -> tuple[int, int]:
    """(lost secrets, doubled rotations) over ``clients`` after ``rounds`` rotations each."""
    lost = doubled = 0
    for n, client_id in enumerate(clients):
        current = fake.client(client_id)
        data = kube.secret(namespace, f"app-{n}") or {}
        lost += data.get("client_secret") != current["client_secret"]
        doubled += max(current["secret_changes"] - rounds, 0)
        assert current["secret_changes"] == rounds, (client_id, current["secret_changes"])
    return lost, doubled


@pytest.mark.reliability("kube-apiserver restarted during rotations (watch streams cut)")
def test_an_api_server_restart_mid_rotation_loses_and_doubles_nothing(
    own_plane: ControlPlane,
    fake_tenant: FakeTenant,
    processes: list[OperatorProcess],
    tmp_path: Path,
    figures: Figures,
) -> None:
    api = config.new_client_from_config(config_file=str(own_plane.kubeconfig))
    kube = Kube(api)
    namespace = f"c-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    make_tenant(api, namespace, "default", M2M_ID, M2M_SECRET)
    processes.append(OperatorProcess(own_plane, fake_tenant, tmp_path, "restart"))
    clients = fetched_apps(kube, fake_tenant, namespace, "kf", 5)

    for n in range(5):
        kube.annotate_rotate(namespace, f"app-{n}", "before-restart")
    began = time.monotonic()
    own_plane.restart_apiserver(down_for=3.0)
    figures["API server down (s)"] = round(time.monotonic() - began, 1)
    for n in range(5):
        wait_for(partial(_settled, kube, namespace, f"app-{n}", "before-restart"), 120, "round 1")
    # After the outage the watches must be back: a new trigger is still seen.
    for n in range(5):
        kube.annotate_rotate(namespace, f"app-{n}", "after-restart")
    for n in range(5):
        wait_for(partial(_settled, kube, namespace, f"app-{n}", "after-restart"), 120, "round 2")
    lost, doubled = _outcome(kube, fake_tenant, namespace, clients, rounds=2)
    figures["rotations"] = 10
    figures["lost secrets"] = lost
    figures["doubled rotations"] = doubled
    assert lost == 0
    api.close()


@pytest.mark.reliability("409 conflict storm on the resource and its Secret during rotations")
def test_concurrent_writers_cause_conflicts_but_not_losses_or_doubles(
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    figures: Figures,
) -> None:
    clients = fetched_apps(kube, fake_tenant, tenant_ns, "cf", 3)

    stop = threading.Event()
    writes = [0]

    def poke() -> None:
        # Bumps resourceVersions all the time: the operator's checked writes hit 409s.
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        while not stop.is_set():
            for n in range(3):
                patch: dict[str, Any] = {"metadata": {"annotations": {"poke": str(writes[0])}}}
                try:
                    custom.patch_namespaced_custom_object(
                        "auth0rotator.dev",
                        "v1alpha1",
                        tenant_ns,
                        "auth0clientsecrets",
                        f"app-{n}",
                        patch,
                    )
                    core.patch_namespaced_secret(f"app-{n}", tenant_ns, patch)
                    writes[0] += 2
                except client.ApiException:
                    pass
            time.sleep(0.02)

    poker = threading.Thread(target=poke, daemon=True)
    poker.start()
    try:
        for round_no in range(3):
            for n in range(3):
                kube.annotate_rotate(tenant_ns, f"app-{n}", f"storm-{round_no}")
            for n in range(3):
                wait_for(
                    partial(_settled, kube, tenant_ns, f"app-{n}", f"storm-{round_no}"),
                    90,
                    f"round {round_no}",
                )
    finally:
        stop.set()
        poker.join(10)
    lost, doubled = _outcome(kube, fake_tenant, tenant_ns, clients, rounds=3)
    figures["rotations"] = 9
    figures["competing writes"] = writes[0]
    figures["lost secrets"] = lost
    figures["doubled rotations"] = doubled
    assert lost == 0
