"""Strategy ``KeyPair`` end to end: the real control plane, the fake tenant over HTTPS.

The headline assertion is the one consumers feel: a consumer that keeps
requesting tokens with the key of its pod's generation (pods started before
the rotation hold the old key, pods started after it the new one) never sees
a failure through a whole rotation, while both generations are seen to
authenticate. The others are SPEC §8's rules: nothing of anyone else is
detached, a full client and a client on client secrets change nothing, a
stalled rollout keeps the old key on (and the documented ways out work), the
operator rotates its own management key and keeps working.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client

from auth0_rotator.keypairs import generate_private_key
from auth0_rotator.secretvalue import SecretValue
from tests.integration.operator.conftest import RunningOperator
from tests.integration.operator.consumers import PodConsumers
from tests.integration.operator.harness import (
    CREDENTIALS_LABELS,
    DOMAIN,
    FakeTenant,
    Kube,
    a0cs_body,
    dump,
    make_tenant,
    wait_for,
)

pytestmark = pytest.mark.integration

KEYPAIR_SCOPES = [
    "read:client_credentials",
    "create:client_credentials",
    "update:client_credentials",
    "delete:client_credentials",
]


def _credentials(fake: FakeTenant, client_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = fake.client(client_id)["credentials"]
    return found


def _enabled(fake: FakeTenant, client_id: str) -> list[str]:
    return list(fake.client(client_id)["enabled_credentials"] or [])


def test_a_rotation_overlaps_the_keys_and_no_consumer_fails(
    api: client.ApiClient,
    kube: Kube,
    fake_tenant: FakeTenant,
    tenant_ns: str,
    web: str,
    operator: RunningOperator,
) -> None:
    first = generate_private_key(2048)
    client_id, (manual,) = fake_tenant.create_jwt_client(first)
    consumers = PodConsumers(
        api,
        kube,
        tenant_ns,
        web,
        "pay",
        initial=first,
        from_secret=lambda data: SecretValue(data["private_key"]),
        # Each pod signs with the key it holds: the old generation's or the new one.
        attempt=lambda key: (
            ("old" if key == first else "new")
            if fake_tenant.token_status(client_id, key) == 200
            else None
        ),
    )
    consumers.start()
    try:
        kube.create(
            tenant_ns,
            a0cs_body(
                "pay",
                client_id,
                strategy="KeyPair",
                keyPair={"adoptCredentialIds": [manual["id"]]},
                restartTargets=[{"kind": "Deployment", "name": web}],
            ),
        )
        status = kube.wait_ready(tenant_ns, "pay", reason="Rotated", timeout=90)
        wait_for(
            lambda: consumers.worked.get("new", 0) >= 4,
            30,
            f"new pods authenticating ({consumers.report()})",
        )
    finally:
        consumers.stop()
    assert consumers.failures == [], dump(consumers.failures[:10])
    assert consumers.worked.get("old") and consumers.worked.get("new"), consumers.report()
    # Exactly one credential left: the new one, enabled; the old one detached and deleted.
    (new,) = _credentials(fake_tenant, client_id)
    assert _enabled(fake_tenant, client_id) == [new["id"]] and new["id"] != manual["id"]
    assert status["credential"] == {"id": new["id"], "kid": new["kid"], "name": new["name"]}
    data = kube.secret(tenant_ns, "pay")
    assert data is not None
    assert set(data) == {"private_key", "key_id", "algorithm", "client_id", "domain"}
    assert (data["key_id"], data["algorithm"], data["client_id"]) == (
        new["kid"],
        "RS256",
        client_id,
    )
    assert fake_tenant.token_status(client_id, SecretValue(data["private_key"])) == 200
    assert fake_tenant.token_status(client_id, first) == 401
    # The old key went only after the rollout was complete.
    rollout = kube.condition(tenant_ns, "pay", "RolloutComplete")
    assert rollout["status"] == "True", dump(rollout)
    deletes = [c for c in fake_tenant.calls(client_id) if c["endpoint"] == "delete-credential"]
    assert len(deletes) == 1 and deletes[0]["status"] == 204
    registers = [c for c in fake_tenant.calls(client_id) if c["endpoint"] == "create-credential"]
    assert len(registers) == 1
    # The private key is nowhere but in Secrets.
    private = data["private_key"].splitlines()[1]
    assert not any(private in line for line in operator.logs.lines)
    assert private not in dump(kube.get(tenant_ns, "pay"))


def test_a_client_at_its_limit_and_a_client_on_secrets_change_nothing(
    kube: Kube, fake_tenant: FakeTenant, tenant_ns: str, operator: RunningOperator
) -> None:
    full, _ = fake_tenant.create_jwt_client(generate_private_key(2048), generate_private_key(2048))
    before = _credentials(fake_tenant, full)
    kube.create(tenant_ns, a0cs_body("full", full, strategy="KeyPair"))
    limit = kube.wait_reason(tenant_ns, "full", "CredentialLimit")
    assert "spec.keyPair.adoptCredentialIds" in limit["message"], dump(limit)
    secret_app = f"app-{uuid.uuid4().hex[:10]}"
    fake_tenant.create_client(secret_app)
    kube.create(tenant_ns, a0cs_body("secrets", secret_app, strategy="KeyPair"))
    mismatch = kube.wait_reason(tenant_ns, "secrets", "AuthMethodMismatch")
    assert "use strategy Generate or Rotate" in mismatch["message"], dump(mismatch)
    assert _credentials(fake_tenant, full) == before
    assert _credentials(fake_tenant, secret_app) == []
    assert fake_tenant.client(secret_app)["secret_changes"] == 0
    assert kube.secret(tenant_ns, "full") is None and kube.secret(tenant_ns, "secrets") is None
    # The way out of a mismatch: another strategy takes over (nothing was changed yet).
    kube.patch(tenant_ns, "secrets", {"spec": {"strategy": "Generate"}})
    kube.wait_ready(tenant_ns, "secrets", timeout=60)


def test_a_stalled_rollout_keeps_the_old_key_until_it_is_resolved(
    api: client.ApiClient,
    kube: Kube,
    fake_tenant: FakeTenant,
    tenant_ns: str,
    operator: RunningOperator,
    stuck: str,
) -> None:
    first = generate_private_key(2048)
    client_id, (manual,) = fake_tenant.create_jwt_client(first)
    kube.create(
        tenant_ns,
        a0cs_body(
            "stuck",
            client_id,
            strategy="KeyPair",
            keyPair={"adoptCredentialIds": [manual["id"]]},
            restartTargets=[{"kind": "Deployment", "name": "stuck"}],
        ),
    )
    waiting = wait_for(
        lambda: (
            (c := kube.condition(tenant_ns, "stuck", "Rotating"))
            and c.get("reason") == "WaitingForRollout"
            and c
        ),
        60,
        "waiting for the rollout",
    )
    assert "both keys are enabled" in waiting["message"], dump(waiting)
    assert len(_enabled(fake_tenant, client_id)) == 2
    assert fake_tenant.token_status(client_id, first) == 200  # the old key still works
    status = kube.get(tenant_ns, "stuck")["status"]
    assert status["rotation"]["phase"] == "RollingOut", dump(status)
    # The documented way out: take the stuck workload out of restartTargets.
    kube.patch(tenant_ns, "stuck", {"spec": {"restartTargets": None}})
    kube.wait_ready(tenant_ns, "stuck", reason="Rotated", timeout=60)
    assert len(_enabled(fake_tenant, client_id)) == 1
    assert fake_tenant.token_status(client_id, first) == 401


def test_the_operator_rotates_its_own_management_key_and_keeps_working(
    api: client.ApiClient,
    kube: Kube,
    fake_tenant: FakeTenant,
    tenant_ns: str,
    operator: RunningOperator,
) -> None:
    first = generate_private_key(2048)
    scopes = ["read:client_keys", "update:client_keys", *KEYPAIR_SCOPES]
    m2m, (manual,) = fake_tenant.create_jwt_client(first, scopes=scopes)
    app = f"app-{uuid.uuid4().hex[:10]}"
    fake_tenant.create_client(app)
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        tenant_ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(
                name="self-credentials",
                labels={**CREDENTIALS_LABELS, "app.kubernetes.io/managed-by": "auth0-rotator"},
                # Offered to the KeyPair resource "self" (adopted: no uid yet).
                annotations={"auth0rotator.dev/owner": f"{tenant_ns}/self"},
            ),
            string_data={"client_id": m2m, "private_key": first.reveal(), "key_id": manual["kid"]},
        ),
    )
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "auth0rotator.dev",
        "v1alpha1",
        tenant_ns,
        "auth0tenants",
        {
            "apiVersion": "auth0rotator.dev/v1alpha1",
            "kind": "Auth0Tenant",
            "metadata": {"name": "self"},
            "spec": {
                "domain": DOMAIN,
                "credentials": {"secretRef": {"name": "self-credentials"}},
                # The tenant's own client is usable only when listed (hardening).
                "allowedClientIds": [m2m, app],
            },
        },
    )
    tenant_ref = {"kind": "Auth0Tenant", "name": "self"}
    self_spec = {
        "tenantRef": tenant_ref,
        "strategy": "KeyPair",
        "secretName": "self-credentials",
        "keyPair": {"adoptCredentialIds": [manual["id"]]},
        "secretTemplate": {"labels": CREDENTIALS_LABELS},
    }
    kube.create(tenant_ns, a0cs_body("self", m2m, **self_spec))
    kube.wait_ready(tenant_ns, "self", reason="Rotated", timeout=60)
    for round_ in (1, 2):
        data = kube.secret(tenant_ns, "self-credentials")
        assert data is not None
        key = SecretValue(data["private_key"])
        assert key != first and fake_tenant.token_status(m2m, key) == 200
        assert fake_tenant.token_status(m2m, first) == 401
        (only,) = _credentials(fake_tenant, m2m)
        assert _enabled(fake_tenant, m2m) == [only["id"]] and only["kid"] == data["key_id"]
        # The operator still works with the key it just rotated to: a secret rotation.
        name = f"app-{round_}"
        kube.create(tenant_ns, a0cs_body(name, app, tenantRef=tenant_ref, initialization="Rotate"))
        kube.wait_ready(tenant_ns, name, reason="Rotated", timeout=60)
        kube.core.delete_namespaced_secret(name, tenant_ns)
        kube.custom.delete_namespaced_custom_object(
            "auth0rotator.dev", "v1alpha1", tenant_ns, "auth0clientsecrets", name
        )
        if round_ == 1:
            kube.annotate_rotate(tenant_ns, "self", "again")
            wait_for(
                lambda: (
                    kube.get(tenant_ns, "self")["status"].get("rotationCount") == 2
                    and not kube.get(tenant_ns, "self")["status"].get("rotation")
                ),
                60,
                "second self-rotation",
            )
            first = key


def test_a_missing_scope_is_named(
    api: client.ApiClient,
    kube: Kube,
    fake_tenant: FakeTenant,
    tenant_ns: str,
    operator: RunningOperator,
) -> None:
    limited = f"m2m-{uuid.uuid4().hex[:8]}"
    secret = fake_tenant.create_client(
        limited, ["read:client_keys", "update:client_keys", "read:client_credentials"]
    )
    make_tenant(api, tenant_ns, "limited", limited, secret)
    client_id, _ = fake_tenant.create_jwt_client(generate_private_key(2048))
    kube.create(
        tenant_ns,
        a0cs_body(
            "pay",
            client_id,
            strategy="KeyPair",
            tenantRef={"kind": "Auth0Tenant", "name": "limited"},
        ),
    )
    missing = kube.wait_reason(tenant_ns, "pay", "InsufficientScope")
    assert "create:client_credentials" in missing["message"], dump(missing)
    assert len(_credentials(fake_tenant, client_id)) == 1
