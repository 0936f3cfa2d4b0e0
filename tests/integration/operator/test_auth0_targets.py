"""``spec.auth0Targets``: the new value also reaches Actions, rules configs and client metadata."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client

from tests.integration.operator.harness import (
    FakeTenant,
    Kube,
    a0cs_body,
    make_deployment,
    make_tenant,
    wait_for,
)

SCOPES = {
    "actionSecret": ["read:actions", "update:actions", "create:actions"],
    "rulesConfig": ["update:rules_configs"],
    "clientMetadata": ["read:clients", "update:clients"],
}
BASE_SCOPES = ["read:client_keys", "update:client_keys"]
TARGET_SCOPES = [scope for scopes in SCOPES.values() for scope in scopes]


def _tenant_with(api: client.ApiClient, fake_tenant: FakeTenant, ns: str, scopes: list[str]) -> str:
    """An Auth0Tenant in ``ns`` whose management application has exactly ``scopes``."""
    m2m = f"m2m-{uuid.uuid4().hex[:8]}"
    secret = fake_tenant.create_client(m2m, scopes)
    make_tenant(api, ns, m2m, m2m, secret)
    return m2m


def _targets(suffix: str) -> tuple[list[dict[str, Any]], str, str, str]:
    action, key, consumer = f"act-{suffix}", f"API_SECRET_{suffix}", f"consumer-{suffix}"
    targets = [
        {"actionSecret": {"actionId": action, "name": "API_SECRET"}},
        {"rulesConfig": {"key": key}},
        {"clientMetadata": {"clientId": consumer, "key": "api_secret"}},
    ]
    return targets, action, key, consumer


def test_each_target_type_receives_the_new_value_and_keeps_what_it_had(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    suffix = uuid.uuid4().hex[:6]
    targets, action, key, consumer = _targets(suffix)
    fake_tenant.create_action(action, {"OTHER": "other-value", "API_SECRET": "old"})
    fake_tenant.create_client(consumer, client_metadata={"team": "payments"})
    tenant = _tenant_with(api, fake_tenant, tenant_ns, BASE_SCOPES + TARGET_SCOPES)
    spec = {"tenantRef": {"name": tenant}, "auth0Targets": targets}
    kube.create(tenant_ns, a0cs_body("app", app_id, **spec))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")

    kube.annotate_rotate(tenant_ns, "app", "1")
    status = kube.wait_ready(tenant_ns, "app", reason="Rotated")

    value = fake_tenant.client(app_id)["client_secret"]
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == value
    got = fake_tenant.action(action)
    assert got["secrets"] == {"OTHER": "other-value", "API_SECRET": value}
    assert got["versions"][-1] == {"OTHER": "other-value", "API_SECRET": value}
    assert fake_tenant.rules_configs()[key] == value
    metadata = fake_tenant.client(consumer)["client_metadata"]
    assert metadata == {"team": "payments", "api_secret": value}
    assert status.get("rotation") is None
    ready = kube.condition(tenant_ns, "app")
    assert f"action {action} secret API_SECRET" in ready["message"]
    assert value not in str(status)


@pytest.mark.parametrize("kind", sorted(SCOPES))
def test_a_missing_scope_names_the_target_and_the_scope_and_loses_nothing(
    kind: str,
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    app_id: str,
    fake_tenant: FakeTenant,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    targets, action, _, consumer = _targets(suffix)
    target = next(t for t in targets if kind in t)
    fake_tenant.create_action(action, {})
    fake_tenant.create_client(consumer)
    missing = SCOPES[kind][-1]
    scopes = BASE_SCOPES + [s for s in TARGET_SCOPES if s != missing]
    tenant = _tenant_with(api, fake_tenant, tenant_ns, scopes)
    apps = client.AppsV1Api(api)
    make_deployment(api, tenant_ns, "web")
    spec = {
        "tenantRef": {"name": tenant},
        "auth0Targets": [target],
        "restartTargets": [{"kind": "Deployment", "name": "web"}],
    }
    kube.create(tenant_ns, a0cs_body("app", app_id, **spec))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")

    kube.annotate_rotate(tenant_ns, "app", "1")
    condition = kube.wait_reason(tenant_ns, "app", "InsufficientScope")

    assert "auth0Targets[0]" in condition["message"] and missing in condition["message"]
    value = fake_tenant.client(app_id)["client_secret"]
    assert value not in condition["message"]
    # The Kubernetes side is done and nothing is lost: the Secret holds what Auth0 accepts.
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == value
    journal = kube.get(tenant_ns, "app")["status"]["rotation"]
    assert journal["phase"] == "Delivering"

    # Pods must read the new value even while an Auth0-side target is failing
    # (after the restart window, which a failing target must not postpone).
    def restarted() -> bool:
        template = apps.read_namespaced_deployment("web", tenant_ns).spec.template.metadata
        annotations = template.annotations or {}
        return bool(annotations.get("auth0rotator.dev/secret-revision") == journal["id"])

    wait_for(restarted, 30, "restart while the Auth0-side target fails")
    assert kube.condition(tenant_ns, "app")["reason"] == "InsufficientScope"
