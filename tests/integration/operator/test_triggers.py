"""SPEC §2 triggers and §3/§4 behaviour, with the operator running against real servers."""

from __future__ import annotations

import subprocess
from datetime import timedelta

from kubernetes import client

from auth0_rotator_dev.devcluster import ControlPlane
from tests.integration.operator.conftest import RunningOperator
from tests.integration.operator.harness import (
    DOMAIN,
    FakeTenant,
    Kube,
    a0cs_body,
    make_tenant,
    wait_for,
)


def _changes(fake: FakeTenant, client_id: str) -> int:
    changes: int = fake.client(client_id)["secret_changes"]
    return changes


def test_initialization_rotate_rotates_at_creation(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    old = fake_tenant.client(app_id)["client_secret"]
    kube.create(tenant_ns, a0cs_body("app", app_id, initialization="Rotate"))
    status = kube.wait_ready(tenant_ns, "app", reason="Rotated")
    data = kube.secret(tenant_ns, "app")
    assert data is not None
    assert data["client_secret"] == fake_tenant.client(app_id)["client_secret"] != old
    assert _changes(fake_tenant, app_id) == 1
    assert status["rotationCount"] == 1


def test_forced_rotation_happens_once_per_annotation_value(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")

    kube.annotate_rotate(tenant_ns, "app", "1700000000")
    status = kube.wait_ready(tenant_ns, "app", reason="Rotated")
    kube.annotate_rotate(tenant_ns, "app", "1700000000")  # same value again: nothing
    kube.patch(tenant_ns, "app", {"metadata": {"labels": {"poke": "yes"}}})
    wait_for(lambda: kube.get(tenant_ns, "app")["metadata"]["labels"].get("poke"), 10, "label")
    again = kube.wait_ready(tenant_ns, "app")

    assert status["lastRotateRequest"] == "1700000000"
    assert again["rotationCount"] == 1
    assert _changes(fake_tenant, app_id) == 1
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == fake_tenant.client(app_id)["client_secret"]

    kube.annotate_rotate(tenant_ns, "app", "1700000001")
    wait_for(lambda: _changes(fake_tenant, app_id) == 2, 30, "second rotation")
    assert kube.wait_ready(tenant_ns, "app", reason="Rotated")["rotationCount"] == 2


def test_rotate_strategy_uses_rotate_secret_once(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id, strategy="Rotate"))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "go")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")
    rotations = [c for c in fake_tenant.calls(app_id) if c["endpoint"] == "rotate-secret"]
    patches = [c for c in fake_tenant.calls(app_id) if c["endpoint"] == "patch-client"]
    assert len(rotations) == 1
    assert patches == []
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == fake_tenant.client(app_id)["client_secret"]


def test_edits_of_restart_targets_and_schedule_do_not_rotate(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id, schedule="0 3 * * *"))
    first = kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.patch(
        tenant_ns,
        "app",
        {
            "spec": {
                "schedule": "30 4 * * *",
                "restartTargets": [{"kind": "Deployment", "name": "x"}],
            }
        },
    )
    moved = wait_for(
        lambda: (
            (s := kube.get(tenant_ns, "app").get("status") or {}).get("nextRotationTime")
            != first["nextRotationTime"]
            and s
        ),
        20,
        "nextRotationTime recomputed",
    )
    assert moved["nextRotationTime"].endswith("T04:30:00Z")
    assert _changes(fake_tenant, app_id) == 0
    assert moved.get("rotationCount") in (None, 0)


def test_secret_name_change_rotates_into_the_new_secret(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.patch(tenant_ns, "app", {"spec": {"secretName": "app-v2"}})
    status = wait_for(
        lambda: (
            (s := kube.get(tenant_ns, "app").get("status") or {}).get("secretName") == "app-v2"
            and not s.get("rotation")
            and s.get("rotationCount") == 1
            and s
        ),
        30,
        "rotation into app-v2",
    )
    data = kube.secret(tenant_ns, "app-v2")
    assert data is not None and data["client_secret"] == fake_tenant.client(app_id)["client_secret"]
    assert status["rotationCount"] == 1


def test_secret_name_change_within_min_interval_moves_the_current_value_without_rotating(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id, minInterval="1h"))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "first")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")

    kube.patch(tenant_ns, "app", {"spec": {"secretName": "moved"}})

    data = wait_for(lambda: kube.secret(tenant_ns, "moved"), 30, "Secret moved")
    assert data["client_secret"] == fake_tenant.client(app_id)["client_secret"]
    assert _changes(fake_tenant, app_id) == 1


def test_client_id_change_adopts_the_new_client_by_fetching(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    other = f"{app_id}-b"
    fake_tenant.create_client(other)
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.patch(tenant_ns, "app", {"spec": {"clientId": other}})
    wait_for(
        lambda: (kube.secret(tenant_ns, "app") or {}).get("client_id") == other, 30, "adoption"
    )
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == fake_tenant.client(other)["client_secret"]
    assert _changes(fake_tenant, other) == 0


def test_schedule_rotates_once_when_due_even_after_missed_fires(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str, operator: RunningOperator
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id, schedule="*/5 * * * *", minInterval="1m"))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    operator.advance(timedelta(minutes=31))  # six fires missed
    status = kube.wait_ready(tenant_ns, "app", reason="Rotated", timeout=30)
    assert status["rotationCount"] == 1
    assert _changes(fake_tenant, app_id) == 1


def test_min_interval_holds_back_a_scheduled_rotation(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str, operator: RunningOperator
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id, schedule="* * * * *", minInterval="2h"))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "now")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")
    operator.advance(timedelta(minutes=5))
    held = kube.wait_reason(tenant_ns, "app", "Rotated")
    wait_for(
        lambda: (
            "MinInterval" in str(kube.get(tenant_ns, "app").get("status"))
            or _changes(fake_tenant, app_id) == 1
        ),
        10,
        "hold",
    )
    assert _changes(fake_tenant, app_id) == 1, held
    operator.advance(timedelta(hours=2))
    wait_for(lambda: _changes(fake_tenant, app_id) == 2, 30, "scheduled rotation after 2h")


def test_suspend_blocks_even_forced_rotations(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.patch(tenant_ns, "app", {"spec": {"suspend": True}})
    kube.wait_reason(tenant_ns, "app", "Suspended")
    kube.annotate_rotate(tenant_ns, "app", "please")
    kube.wait_reason(tenant_ns, "app", "Suspended")
    assert _changes(fake_tenant, app_id) == 0
    kube.patch(tenant_ns, "app", {"spec": {"suspend": False}})
    wait_for(lambda: _changes(fake_tenant, app_id) == 1, 30, "rotation after resume")


def test_foreign_secret_is_refused_and_left_untouched(
    api: client.ApiClient, tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        tenant_ns,
        client.V1Secret(metadata=client.V1ObjectMeta(name="taken"), string_data={"x": "mine"}),
    )
    before = core.read_namespaced_secret("taken", tenant_ns)
    kube.create(tenant_ns, a0cs_body("app", app_id, secretName="taken", initialization="Rotate"))
    condition = kube.wait_reason(tenant_ns, "app", "SecretConflict")
    after = core.read_namespaced_secret("taken", tenant_ns)
    assert "taken" in condition["message"]
    assert after.data == before.data
    assert after.metadata.resource_version == before.metadata.resource_version
    assert fake_tenant.calls(app_id) == []


def test_two_resources_on_one_secret_the_second_conflicts(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    other = f"{app_id}-2"
    fake_tenant.create_client(other)
    kube.create(tenant_ns, a0cs_body("first", app_id, secretName="shared"))
    kube.wait_ready(tenant_ns, "first", reason="Fetched")
    kube.create(tenant_ns, a0cs_body("second", other, secretName="shared"))
    condition = kube.wait_reason(tenant_ns, "second", "SecretConflict")
    assert f"{tenant_ns}/first" in condition["message"]
    data = kube.secret(tenant_ns, "shared")
    assert data is not None and data["client_id"] == app_id


def test_deleting_the_secret_restores_it(
    api: client.ApiClient, tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    client.CoreV1Api(api).delete_namespaced_secret("app", tenant_ns)
    data = wait_for(lambda: kube.secret(tenant_ns, "app"), 30, "restored Secret")
    assert data["client_secret"] == fake_tenant.client(app_id)["client_secret"]
    assert kube.wait_reason(tenant_ns, "app", "Restored")
    assert _changes(fake_tenant, app_id) == 0


def test_missing_update_scope_is_named_and_nothing_changes(
    api: client.ApiClient, tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    reader = f"reader-{app_id}"
    secret = fake_tenant.create_client(reader, ["read:client_keys"])
    make_tenant(api, tenant_ns, "readonly", reader, secret)
    kube.create(tenant_ns, a0cs_body("app", app_id, tenantRef={"name": "readonly"}))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "x")
    condition = kube.wait_reason(tenant_ns, "app", "InsufficientScope")
    assert "update:client_keys" in condition["message"]
    assert _changes(fake_tenant, app_id) == 0


def test_missing_read_scope_is_named_for_fetch(
    api: client.ApiClient, tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    writer = f"writer-{app_id}"
    secret = fake_tenant.create_client(writer, ["update:client_keys"])
    make_tenant(api, tenant_ns, "writeonly", writer, secret)
    kube.create(tenant_ns, a0cs_body("app", app_id, tenantRef={"name": "writeonly"}))
    condition = kube.wait_reason(tenant_ns, "app", "InsufficientScope")
    assert "read:client_keys" in condition["message"]


def test_cluster_tenant_refuses_other_namespaces_and_clients_without_auth0_calls(
    api: client.ApiClient,
    control_plane: ControlPlane,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
) -> None:
    name = f"shared-{tenant_ns}"
    client.CustomObjectsApi(api).create_cluster_custom_object(
        "auth0rotator.dev",
        "v1alpha1",
        "clusterauth0tenants",
        {
            "apiVersion": "auth0rotator.dev/v1alpha1",
            "kind": "ClusterAuth0Tenant",
            "metadata": {"name": name},
            "spec": {
                "domain": DOMAIN,
                "credentials": {
                    "secretRef": {"name": "default-credentials", "namespace": tenant_ns}
                },
                "allowedNamespaces": {"names": ["somewhere-else"]},
                "allowedClientIds": [app_id],
            },
        },
    )
    try:
        ref = {"kind": "ClusterAuth0Tenant", "name": name}
        kube.create(
            tenant_ns, a0cs_body("ns-refused", app_id, tenantRef=ref, initialization="Rotate")
        )
        refused = kube.wait_reason(tenant_ns, "ns-refused", "TenantNotAllowed")
        assert tenant_ns in refused["message"]
        client.CustomObjectsApi(api).patch_cluster_custom_object(
            "auth0rotator.dev",
            "v1alpha1",
            "clusterauth0tenants",
            name,
            {"spec": {"allowedNamespaces": {"names": [tenant_ns]}}},
        )
        other = f"{app_id}-x"
        fake_tenant.create_client(other)
        kube.create(
            tenant_ns, a0cs_body("id-refused", other, tenantRef=ref, initialization="Rotate")
        )
        kube.wait_reason(tenant_ns, "id-refused", "ClientNotAllowed")
        kube.wait_ready(tenant_ns, "ns-refused", reason="Rotated")
        assert fake_tenant.calls(other) == []
    finally:
        subprocess.run(
            [
                str(control_plane.kubectl),
                "--kubeconfig",
                str(control_plane.kubeconfig),
                "delete",
                "clusterauth0tenant",
                name,
                "--wait=false",
            ],
            check=False,
            capture_output=True,
        )


def test_rotate_with_a_5xx_before_commit_rotates_exactly_once(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id, strategy="Rotate"))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    fake_tenant.fault(endpoint="rotate-secret", status=503, count=1)
    try:
        kube.annotate_rotate(tenant_ns, "app", "x")
        status = kube.wait_ready(tenant_ns, "app", reason="Rotated", timeout=60)
    finally:
        fake_tenant.clear_faults()
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == fake_tenant.client(app_id)["client_secret"]
    assert _changes(fake_tenant, app_id) == 1
    assert status["rotationCount"] == 1


def test_rotate_whose_answer_is_lost_after_commit_recovers_the_value(
    tenant_ns: str, kube: Kube, fake_tenant: FakeTenant, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id, strategy="Rotate"))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    fake_tenant.fault(endpoint="rotate-secret", reset_after_commit=True, count=1)
    try:
        kube.annotate_rotate(tenant_ns, "app", "x")
        ready = kube.wait_ready(tenant_ns, "app", reason="Rotated", timeout=60)
    finally:
        fake_tenant.clear_faults()
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == fake_tenant.client(app_id)["client_secret"]
    assert _changes(fake_tenant, app_id) == 1
    message = next(c for c in ready["conditions"] if c["type"] == "Ready")["message"]
    assert "read back" in message
