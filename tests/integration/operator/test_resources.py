"""Target Secrets (ownership, deletion, restore, adoption), tenants, status and Events."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.integration.operator.harness import (
    FakeTenant,
    Kube,
    a0cs_body,
    make_tenant,
    wait_for,
)


def _delete_a0cs(api: client.ApiClient, namespace: str, name: str) -> None:
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        "auth0rotator.dev", "v1alpha1", namespace, "auth0clientsecrets", name
    )


def test_deletion_policy_delete_garbage_collects_the_secret_and_retain_keeps_it(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    other = f"{app_id}-r"
    fake_tenant.create_client(other)
    kube.create(tenant_ns, a0cs_body("gone", app_id, deletionPolicy="Delete"))
    kube.create(tenant_ns, a0cs_body("kept", other))
    kube.wait_ready(tenant_ns, "gone", reason="Fetched")
    kube.wait_ready(tenant_ns, "kept", reason="Fetched")
    _delete_a0cs(api, tenant_ns, "gone")
    _delete_a0cs(api, tenant_ns, "kept")
    wait_for(lambda: kube.secret(tenant_ns, "gone") is None, 90, "garbage collection")
    assert kube.secret(tenant_ns, "kept") is not None


def test_a_resource_created_again_under_its_name_takes_its_retained_secret_back(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    # Found by the soak: deleted and created again (as GitOps tools do), the resource
    # stayed SecretConflict with its own Secret, kept by deletionPolicy Retain.
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    first_uid = kube.get(tenant_ns, "app")["metadata"]["uid"]
    _delete_a0cs(api, tenant_ns, "app")
    wait_for(lambda: not _exists(api, tenant_ns, "app"), 30, "the resource gone")
    assert kube.secret(tenant_ns, "app") is not None  # Retain
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "after-recreation")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == fake_tenant.client(app_id)["client_secret"]
    meta = client.CoreV1Api(api).read_namespaced_secret("app", tenant_ns).metadata
    uid = kube.get(tenant_ns, "app")["metadata"]["uid"]
    assert uid != first_uid and meta.annotations["auth0rotator.dev/owner-uid"] == uid


def _as_backed_up(obj: dict[str, Any]) -> dict[str, Any]:
    """What a backup tool (Velero, a GitOps repository) restores: no uid, no status."""
    meta = obj["metadata"]
    kept = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)}
    return {**{k: v for k, v in obj.items() if k not in ("metadata", "status")}, "metadata": kept}


def test_a_restore_from_backup_adopts_its_secrets_without_rotating(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    """Resource and Secret deleted, then created again from a backup, Secret first.

    The restored Secret names the resource by namespace/name but carries the
    uid of the resource that wrote it: it is adopted (the uid updated), with no
    SecretConflict, no Auth0 change, and the other keys kept.
    """
    core = client.CoreV1Api(api)
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "before-backup")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")
    core.patch_namespaced_secret("app", tenant_ns, {"stringData": {"extra": "kept"}})
    backup_secret = _as_backed_up(
        api.sanitize_for_serialization(core.read_namespaced_secret("app", tenant_ns))
    )
    backup_a0cs = _as_backed_up(kube.get(tenant_ns, "app"))
    old_uid = kube.get(tenant_ns, "app")["metadata"]["uid"]
    value, changes = kube.secret(tenant_ns, "app"), fake_tenant.client(app_id)["secret_changes"]

    _delete_a0cs(api, tenant_ns, "app")
    wait_for(lambda: not _exists(api, tenant_ns, "app"), 30, "the resource gone")
    core.delete_namespaced_secret("app", tenant_ns)
    core.create_namespaced_secret(tenant_ns, backup_secret)
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "auth0rotator.dev", "v1alpha1", tenant_ns, "auth0clientsecrets", backup_a0cs
    )

    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    uid = kube.get(tenant_ns, "app")["metadata"]["uid"]
    meta = core.read_namespaced_secret("app", tenant_ns).metadata
    assert uid != old_uid and meta.annotations["auth0rotator.dev/owner-uid"] == uid
    assert kube.secret(tenant_ns, "app") == value  # the same secret, the extra key kept
    assert fake_tenant.client(app_id)["secret_changes"] == changes


def test_an_existing_secret_is_adopted_only_when_its_owner_opts_in(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    """An unmanaged Secret is a SecretConflict until labelled and annotated for the resource."""
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        tenant_ns,
        {
            "metadata": {"name": "app"},
            "stringData": {"client_secret": "typed-by-hand", "extra": "x"},
        },
    )
    kube.create(tenant_ns, a0cs_body("app", app_id))
    conflict = kube.wait_reason(tenant_ns, "app", "SecretConflict")
    assert "auth0rotator.dev/owner" in conflict["message"]  # the message says how to opt in
    assert kube.secret(tenant_ns, "app") == {"client_secret": "typed-by-hand", "extra": "x"}
    core.patch_namespaced_secret(
        "app",
        tenant_ns,
        {"metadata": {
            "labels": {"app.kubernetes.io/managed-by": "auth0-rotator"},
            "annotations": {"auth0rotator.dev/owner": f"{tenant_ns}/app"},
        }},
    )  # fmt: skip
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["extra"] == "x"
    assert data["client_secret"] == fake_tenant.client(app_id)["client_secret"]


def _exists(api: client.ApiClient, namespace: str, name: str) -> bool:
    try:
        client.CustomObjectsApi(api).get_namespaced_custom_object(
            "auth0rotator.dev", "v1alpha1", namespace, "auth0clientsecrets", name
        )
    except client.ApiException:
        return False
    return True


def test_previous_secret_key_and_template_are_written(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    original = fake_tenant.client(app_id)["client_secret"]
    kube.create(
        tenant_ns,
        a0cs_body(
            "app",
            app_id,
            keys={"previousClientSecret": "previous", "domain": ""},
            secretTemplate={"labels": {"team": "orders"}, "annotations": {"note": "hi"}},
        ),
    )
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "1")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")
    data = kube.secret(tenant_ns, "app")
    assert data is not None
    assert data["previous"] == original
    assert data["client_secret"] == fake_tenant.client(app_id)["client_secret"]
    assert "domain" not in data
    meta = client.CoreV1Api(api).read_namespaced_secret("app", tenant_ns).metadata
    assert meta.labels["team"] == "orders"
    assert meta.labels["app.kubernetes.io/managed-by"] == "auth0-rotator"
    assert meta.annotations["note"] == "hi"
    assert meta.annotations["auth0rotator.dev/owner"] == f"{tenant_ns}/app"


def test_tenant_reports_ready_when_a_token_is_obtained_and_why_not_otherwise(
    api: client.ApiClient, tenant_ns: str
) -> None:
    custom = client.CustomObjectsApi(api)

    def ready(name: str) -> dict[str, str] | None:
        obj: dict[str, Any] = custom.get_namespaced_custom_object(  # type: ignore[assignment]
            "auth0rotator.dev", "v1alpha1", tenant_ns, "auth0tenants", name
        )
        conditions = (obj.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "Ready"), None)

    good = wait_for(lambda: ready("default"), 30, "tenant Ready")
    assert (good["status"], good["reason"]) == ("True", "TokenObtained")
    make_tenant(api, tenant_ns, "wrong", "rotator-m2m", "not-the-secret")
    bad = wait_for(lambda: ready("wrong"), 60, "tenant Ready=False")
    assert (bad["status"], bad["reason"]) == ("False", "InvalidCredentials")
    assert "not-the-secret" not in bad["message"]


def test_unusable_spec_is_reported_as_invalid_spec_without_auth0_calls(
    tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id, schedule="0 3 * * *", timeZone="Mars/Olympus"))
    condition = kube.wait_reason(tenant_ns, "app", "InvalidSpec")
    assert "spec.timeZone" in condition["message"]
    assert fake_tenant.calls(app_id) == []


def test_missing_tenant_is_named(tenant_ns: str, kube: Kube, app_id: str) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id, tenantRef={"name": "nope"}))
    condition = kube.wait_reason(tenant_ns, "app", "TenantNotFound")
    assert "nope" in condition["message"]


def test_each_step_of_a_rotation_is_recorded_as_an_event(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "1")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")

    def reasons() -> list[str]:
        events = (
            client.CoreV1Api(api)
            .list_namespaced_event(tenant_ns, field_selector="involvedObject.name=app")
            .items
        )
        return sorted(str(e.reason) for e in events)

    got = wait_for(lambda: (r := reasons()) and "Rotated" in r and r, 20, "events")
    assert got == ["Fetched", "Rotated", "RotationStarted"]


def test_editing_a_managed_key_restores_it(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    client.CoreV1Api(api).patch_namespaced_secret(
        "app", tenant_ns, {"stringData": {"client_secret": "hand-edited"}}
    )
    wait_for(
        lambda: (
            (kube.secret(tenant_ns, "app") or {}).get("client_secret")
            == fake_tenant.client(app_id)["client_secret"]
        ),
        30,
        "managed key restored",
    )
    assert kube.wait_reason(tenant_ns, "app", "Restored")
    assert fake_tenant.client(app_id)["secret_changes"] == 0


def test_a_leftover_staging_secret_of_an_earlier_rotation_is_replaced_then_removed(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    # What a crash between finishing a rotation and deleting its staging Secret leaves.
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    uid = kube.get(tenant_ns, "app")["metadata"]["uid"]
    staging = "app.staging.auth0rotator.dev"
    client.CoreV1Api(api).create_namespaced_secret(
        tenant_ns,
        {
            "metadata": {
                "name": staging,
                "labels": {
                    "app.kubernetes.io/managed-by": "auth0-rotator",
                    "auth0rotator.dev/role": "staging",
                },
                "annotations": {
                    "auth0rotator.dev/owner": f"{tenant_ns}/app",
                    "auth0rotator.dev/owner-uid": uid,
                    "auth0rotator.dev/rotation-id": "20200101000000-old",
                    "auth0rotator.dev/keys": "value",
                },
            },
            "stringData": {"value": "leftover-value-of-an-earlier-rotation"},
        },
    )
    kube.annotate_rotate(tenant_ns, "app", "after-leftover")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")

    current = fake_tenant.client(app_id)["client_secret"]
    assert current != "leftover-value-of-an-earlier-rotation"
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == current
    wait_for(lambda: kube.secret(tenant_ns, staging) is None, 20, "staging Secret removed")
