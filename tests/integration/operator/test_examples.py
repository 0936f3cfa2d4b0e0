"""Every file in ``examples/`` is applied as it is, and does what its comments say."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from kubernetes import client

from auth0_rotator.schedule import parse_time
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator_dev.devcluster import ControlPlane
from tests.integration.operator.conftest import RunningOperator
from tests.integration.operator.harness import (
    DOMAIN,
    EXAMPLES,
    FakeTenant,
    Kube,
    wait_for,
)

REVISION = "auth0rotator.dev/secret-revision"


def _apply(plane: ControlPlane, namespace: str | None, *files: str) -> None:
    for name in files:
        args = ["apply", "-f", str(EXAMPLES / name)]
        plane.kubectl_run(*args, *(["-n", namespace] if namespace else []))


def _changes(fake: FakeTenant, client_id: str) -> int:
    changes: int = fake.client(client_id)["secret_changes"]
    return changes


def _condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == ctype), {})


def test_every_example_file_is_covered_here() -> None:
    applied = {
        "auth0tenant.yaml",
        "auth0clientsecret.yaml",
        "orders-api.yaml",
        "force-rotation.sh",
        "scheduled-rotation.yaml",
        "cluster-tenant.yaml",
        "cluster-tenant-client-secret.yaml",
        "keypair.yaml",
        "announced-rotation.yaml",
        "fake-auth0-seed.json",  # seeds the session's fake tenant
        "README.md",
    }
    assert {p.name for p in EXAMPLES.iterdir()} == applied


def test_tenant_client_secret_and_deployment_then_forced_rotation(
    control_plane: ControlPlane,
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
) -> None:
    # tenant_ns already holds an equivalent tenant; the example's own replaces it.
    _apply(
        control_plane, tenant_ns, "auth0tenant.yaml", "orders-api.yaml", "auth0clientsecret.yaml"
    )
    before = _changes(fake_tenant, "orders-api-client")
    kube.wait_ready(tenant_ns, "orders-api", reason="Fetched")
    data = kube.secret(tenant_ns, "orders-api-auth0")
    assert data is not None
    fetched = data["client_secret"]
    assert fetched == fake_tenant.client("orders-api-client")["client_secret"]
    assert (data["client_id"], data["domain"]) == ("orders-api-client", DOMAIN)
    assert _changes(fake_tenant, "orders-api-client") == before, "Fetch never rotates"

    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        "PATH": f"{control_plane.kubectl.parent}:{os.environ['PATH']}",
    }
    out = subprocess.run(
        ["bash", str(EXAMPLES / "force-rotation.sh"), "orders-api", tenant_ns],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "orders-api" in out.stdout and "condition met" in out.stdout
    # The script returns once the restart targets run the new secret, not before.
    status = kube.get(tenant_ns, "orders-api")["status"]
    assert f"every restart target runs secret revision {status['restartRevision']}" in out.stdout
    rollout = _condition(status, "RolloutComplete")
    assert rollout["status"] == "True" and status["restartRevision"] in rollout["message"]

    status = kube.wait_ready(tenant_ns, "orders-api", reason="Rotated")
    assert _changes(fake_tenant, "orders-api-client") == before + 1
    data = kube.secret(tenant_ns, "orders-api-auth0")
    assert data is not None
    assert data["client_secret"] == fake_tenant.client("orders-api-client")["client_secret"]
    assert data["previous_client_secret"] == fetched != data["client_secret"]

    def rolled() -> dict[str, Any] | None:
        current = kube.get(tenant_ns, "orders-api").get("status") or {}
        return current if _condition(current, "RolloutComplete").get("status") == "True" else None

    wait_for(rolled, 120, "RolloutComplete")
    deployment = client.AppsV1Api(api).read_namespaced_deployment("orders-api", tenant_ns)
    assert deployment.spec.template.metadata.annotations[REVISION] == status["secretRevision"]
    pods = client.CoreV1Api(api).list_namespaced_pod(
        tenant_ns, label_selector="app.kubernetes.io/name=orders-api"
    )
    live = [p for p in pods.items if p.metadata.deletion_timestamp is None]
    assert len(live) == 2
    assert all(p.metadata.annotations.get(REVISION) == status["secretRevision"] for p in live)


def test_announced_rotation_publishes_then_switches_and_leaves_no_next_key(
    control_plane: ControlPlane,
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
) -> None:
    _apply(control_plane, tenant_ns, "auth0tenant.yaml", "announced-rotation.yaml")
    kube.wait_ready(tenant_ns, "catalog", reason="Fetched")
    before = _changes(fake_tenant, "catalog-client")
    old = fake_tenant.client("catalog-client")["client_secret"]
    kube.annotate_rotate(tenant_ns, "catalog", "example")
    status = wait_for(
        lambda: (
            (s := kube.get(tenant_ns, "catalog").get("status") or {}).get("lastRotateRequest")
            == "example"
            and not s.get("rotation")
            and s
        ),
        120,
        "the announced rotation",
    )
    assert _changes(fake_tenant, "catalog-client") == before + 1
    data = kube.secret(tenant_ns, "catalog-auth0")
    assert data is not None and "next_client_secret" not in data
    assert data["client_secret"] == fake_tenant.client("catalog-client")["client_secret"]
    assert data["previous_client_secret"] == old
    wait_for(
        lambda: (
            _condition(kube.get(tenant_ns, "catalog")["status"], "RolloutComplete").get("status")
            == "True"
        ),
        60,
        "the second rollout",
    )
    deployment = client.AppsV1Api(api).read_namespaced_deployment("catalog", tenant_ns)
    assert deployment.spec.template.metadata.annotations[REVISION] == status["secretRevision"]


def test_keypair_registers_a_key_at_creation_and_rotates_without_a_gap(
    control_plane: ControlPlane,
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
) -> None:
    _apply(control_plane, tenant_ns, "auth0tenant.yaml", "keypair.yaml")
    first = kube.wait_ready(tenant_ns, "payments-api", reason="Rotated", timeout=90)
    state = fake_tenant.client("payments-api-client")
    assert state["enabled_credentials"] == [first["credential"]["id"]]
    data = kube.secret(tenant_ns, "payments-api-auth0")
    assert data is not None
    assert set(data) == {"private_key", "key_id", "algorithm", "client_id", "domain"}
    key = SecretValue(data["private_key"])
    assert fake_tenant.token_status("payments-api-client", key) in (200, 403)

    kube.annotate_rotate(tenant_ns, "payments-api", "example")
    wait_for(
        lambda: (
            (s := kube.get(tenant_ns, "payments-api").get("status") or {}).get("lastRotateRequest")
            == "example"
            and not s.get("rotation")
            and s
        ),
        120,
        "the forced KeyPair rotation",
    )
    state = fake_tenant.client("payments-api-client")
    (only,) = state["credentials"]  # the first key was ours: retired and deleted
    assert state["enabled_credentials"] == [only["id"]] != [first["credential"]["id"]]
    data = kube.secret(tenant_ns, "payments-api-auth0")
    assert data is not None and data["key_id"] == only["kid"]
    assert fake_tenant.token_status("payments-api-client", key) == 401
    status = kube.get(tenant_ns, "payments-api")["status"]
    assert _condition(status, "RolloutComplete").get("status") == "True"


def _next_monday_3am_paris(now: datetime) -> datetime:
    local = now.astimezone(ZoneInfo("Europe/Paris"))
    for days in range(8):
        day = (local + timedelta(days=days)).date()
        fire = datetime(day.year, day.month, day.day, 3, tzinfo=ZoneInfo("Europe/Paris"))
        if fire.weekday() == 0 and fire > local:
            return fire.astimezone(UTC)
    raise AssertionError("no Monday within a week")


def test_scheduled_rotation_fires_on_monday_3am_paris_and_restarts_by_selector(
    control_plane: ControlPlane,
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    operator: RunningOperator,
) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_stateful_set(
        tenant_ns,
        {
            "metadata": {"name": "billing", "labels": {"app.kubernetes.io/part-of": "billing"}},
            "spec": {
                "serviceName": "billing",
                "selector": {"matchLabels": {"app": "billing"}},
                "template": {
                    "metadata": {"labels": {"app": "billing"}},
                    "spec": {"containers": [{"name": "w", "image": "registry.invalid/w:1"}]},
                },
            },
        },
    )
    _apply(control_plane, tenant_ns, "auth0tenant.yaml", "scheduled-rotation.yaml")
    before = _changes(fake_tenant, "billing-worker-client")
    status = kube.wait_ready(tenant_ns, "billing-worker", reason="Fetched")
    due = parse_time(status["nextRotationTime"])
    assert due == _next_monday_3am_paris(operator.clock())
    data = kube.secret(tenant_ns, "billing-worker")  # secretName defaults to the name
    assert data is not None and "previous_client_secret" not in data  # nothing to keep yet

    operator.advance(due - operator.clock() + timedelta(seconds=1))
    status = kube.wait_ready(tenant_ns, "billing-worker", reason="Rotated", timeout=60)
    assert status["rotationCount"] == 1
    assert _changes(fake_tenant, "billing-worker-client") == before + 1
    assert parse_time(status["nextRotationTime"]) == due + timedelta(days=7)

    def restarted() -> bool:
        template = apps.read_namespaced_stateful_set("billing", tenant_ns).spec.template
        annotations = template.metadata.annotations or {}
        return bool(annotations.get(REVISION) == status["secretRevision"])

    wait_for(restarted, 30, "the StatefulSet selected by label restarted")


@pytest.fixture
def operator_namespace(api: client.ApiClient) -> Iterator[str]:
    """``auth0-rotator``, where cluster tenant credentials live (kept if it existed)."""
    core = client.CoreV1Api(api)
    created = False
    try:
        core.create_namespace({"metadata": {"name": "auth0-rotator"}})
        created = True
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    try:
        yield "auth0-rotator"
    finally:
        client.CustomObjectsApi(api).delete_cluster_custom_object(
            "auth0rotator.dev", "v1alpha1", "clusterauth0tenants", "shared"
        )
        core.delete_namespaced_secret("auth0-management", "auth0-rotator")
        if created:
            core.delete_namespace("auth0-rotator")


@pytest.fixture
def team_namespaces(api: client.ApiClient, operator: RunningOperator) -> Iterator[list[str]]:
    """Two ``t-`` namespaces: the first labelled for the shared tenant, the second not."""
    core = client.CoreV1Api(api)
    names = [f"t-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    core.create_namespace(
        {"metadata": {"name": names[0], "labels": {"auth0rotator.dev/tenant": "shared"}}}
    )
    core.create_namespace({"metadata": {"name": names[1]}})
    try:
        yield names
    finally:
        for name in names:
            core.delete_namespace(name)


def test_cluster_tenant_serves_only_allowed_namespaces(
    control_plane: ControlPlane,
    operator_namespace: str,
    team_namespaces: list[str],
    kube: Kube,
    fake_tenant: FakeTenant,
) -> None:
    allowed, other = team_namespaces
    _apply(control_plane, None, "cluster-tenant.yaml")
    before = len(fake_tenant.calls("inventory-client"))
    for ns in team_namespaces:
        _apply(control_plane, ns, "cluster-tenant-client-secret.yaml")

    kube.wait_ready(allowed, "inventory", reason="Fetched")
    data = kube.secret(allowed, "inventory")
    assert data is not None
    assert data["client_secret"] == fake_tenant.client("inventory-client")["client_secret"]

    refused = kube.wait_reason(other, "inventory", "TenantNotAllowed")
    assert refused["status"] == "False"
    assert other in refused["message"] and "allowedNamespaces" in refused["message"]
    assert kube.secret(other, "inventory") is None
    calls = fake_tenant.calls("inventory-client")[before:]
    assert len(calls) >= 1, "the allowed namespace fetched the secret"
    assert _changes(fake_tenant, "inventory-client") == 0
