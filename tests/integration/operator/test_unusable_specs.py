"""Accepted-but-unusable specs: each ends in its documented reason, harmlessly.

Admission cannot know that a tenant is missing, a credential is wrong or a
client does not exist; the operator must say so. For every case below:
the condition carries the documented reason and a message naming what to fix,
Auth0 is never written to for that client, the operator does not crash, and
another resource in the same namespace still rotates normally.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from auth0_rotator_dev.devcluster.cluster import free_port
from tests.integration.operator.conftest import TEST_ENGINE
from tests.integration.operator.harness import (
    CREDENTIALS_LABELS,
    DOMAIN,
    M2M_ID,
    M2M_SECRET,
    FakeTenant,
    Kube,
    a0cs_body,
    make_tenant,
    wait_for,
)

GROUP, VERSION = "auth0rotator.dev", "v1alpha1"


@dataclass
class World:
    """What a case may create: the namespace, the APIs, the fake and its cleanups."""

    api: client.ApiClient
    namespace: str
    fake: FakeTenant
    cleanups: list[Callable[[], Any]] = field(default_factory=list)

    def secret(self, name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> None:
        """A Secret; by default offered as tenant credentials (see CREDENTIALS_LABELS)."""
        labels = CREDENTIALS_LABELS if labels is None else labels
        client.CoreV1Api(self.api).create_namespaced_secret(
            self.namespace, {"metadata": {"name": name, "labels": labels}, "stringData": data}
        )

    def tenant(self, name: str, secret: str, domain: str = DOMAIN, **spec: Any) -> None:
        creds = {"secretRef": {"name": secret, **spec.pop("secretRef", {})}}
        client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "auth0tenants",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Auth0Tenant",
                "metadata": {"name": name},
                "spec": {"domain": domain, "credentials": creds, **spec},
            },
        )

    def cluster_tenant(self, **spec: Any) -> str:
        name = f"ct-{uuid.uuid4().hex[:8]}"
        custom = client.CustomObjectsApi(self.api)
        custom.create_cluster_custom_object(
            GROUP,
            VERSION,
            "clusterauth0tenants",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ClusterAuth0Tenant",
                "metadata": {"name": name},
                "spec": {
                    "domain": DOMAIN,
                    "credentials": {
                        "secretRef": {"name": "default-credentials", "namespace": self.namespace}
                    },
                    **spec,
                },
            },
        )
        self.cleanups.append(
            partial(
                custom.delete_cluster_custom_object, GROUP, VERSION, "clusterauth0tenants", name
            )
        )
        return name


@dataclass
class Case:
    """One unusable spec: how to set it up, and the condition it must end in."""

    id: str
    reason: str
    says: str
    """A part of the condition message that tells the user what to fix."""
    spec: Callable[[World, str], dict[str, Any]]
    condition: str = "Ready"
    rotates: bool = False
    """Restart-target problems only show when a rotation restarts: it rotates at creation,
    and the Secret write is never blocked by them (so exactly one Auth0 change)."""


def _tenant_of_another_namespace(world: World, app: str) -> dict[str, Any]:
    core = client.CoreV1Api(world.api)
    other = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": other}})
    world.cleanups.append(partial(core.delete_namespace, other))
    make_tenant(world.api, other, "theirs", M2M_ID, M2M_SECRET)
    # An Auth0Tenant reference has no namespace: "theirs" is looked up here only.
    return {"tenantRef": {"kind": "Auth0Tenant", "name": "theirs"}}


def _missing_credentials_secret(world: World, app: str) -> dict[str, Any]:
    world.tenant("ghost", "absent")
    return {"tenantRef": {"name": "ghost"}}


def _missing_credentials_key(world: World, app: str) -> dict[str, Any]:
    world.secret("half", {"client_id": M2M_ID})
    world.tenant("half", "half")
    return {"tenantRef": {"name": "half"}}


def _wrong_key_name(world: World, app: str) -> dict[str, Any]:
    world.secret("renamed", {"client_id": M2M_ID, "client_secret": M2M_SECRET})
    world.tenant("renamed", "renamed", secretRef={"clientIdKey": "id"})
    return {"tenantRef": {"name": "renamed"}}


def _wrong_credentials(world: World, app: str) -> dict[str, Any]:
    world.secret("wrong", {"client_id": M2M_ID, "client_secret": "not-the-management-secret"})
    world.tenant("wrong", "wrong")
    return {"tenantRef": {"name": "wrong"}}


def _read_only_scopes(world: World, app: str) -> dict[str, Any]:
    m2m = f"m2m-{uuid.uuid4().hex[:8]}"
    secret = world.fake.create_client(m2m, scopes=["read:client_keys"])
    world.secret("readonly", {"client_id": m2m, "client_secret": secret})
    world.tenant("readonly", "readonly")
    return {"tenantRef": {"name": "readonly"}, "initialization": "Rotate"}


def _unreachable(world: World, app: str) -> dict[str, Any]:
    world.tenant("nowhere", "default-credentials", domain="127.0.0.1:9")
    return {"tenantRef": {"name": "nowhere"}}


def _cluster_tenant_other_namespaces(world: World, app: str) -> dict[str, Any]:
    name = world.cluster_tenant(allowedNamespaces={"names": ["somewhere-else"]})
    return {"tenantRef": {"kind": "ClusterAuth0Tenant", "name": name}}


def _tenant_for_other_clients(world: World, app: str) -> dict[str, Any]:
    world.tenant("others", "default-credentials", allowedClientIds=["someone-else"])
    return {"tenantRef": {"name": "others"}}


def _foreign_secret(world: World, app: str) -> dict[str, Any]:
    world.secret("taken", {"client_secret": "belongs-to-someone-else"}, labels={})
    return {"secretName": "taken"}


def _malformed_ca_bundle(world: World, app: str) -> dict[str, Any]:
    bundle = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    world.tenant("badca", "default-credentials", caBundle=bundle)
    return {"tenantRef": {"name": "badca"}}


def _credentials_not_offered(world: World, app: str) -> dict[str, Any]:
    world.secret("unlabelled", {"client_id": M2M_ID, "client_secret": M2M_SECRET}, labels={})
    world.tenant("unlabelled", "unlabelled")
    return {"tenantRef": {"name": "unlabelled"}}


def _domain_not_allowed(world: World, app: str) -> dict[str, Any]:
    world.tenant("inside", "default-credentials", domain="kubernetes.default.svc")
    return {"tenantRef": {"name": "inside"}}


def _private_key_jwt(world: World, app: str) -> dict[str, Any]:
    jwt = f"jwt-{uuid.uuid4().hex[:8]}"
    world.fake.create_client(jwt, private_key_jwt=True)
    return {"clientId": jwt, "strategy": "Rotate", "initialization": "Rotate"}


CASES = [
    Case("bad-cron", "InvalidSpec", "spec.schedule", lambda w, a: {"schedule": "61 * * * *"}),
    Case(
        "unknown-time-zone",
        "InvalidSpec",
        "spec.timeZone",
        lambda w, a: {"schedule": "0 3 * * *", "timeZone": "Mars/Olympus"},
    ),
    Case("missing-tenant", "TenantNotFound", "nope", lambda w, a: {"tenantRef": {"name": "nope"}}),
    Case("tenant-of-another-namespace", "TenantNotFound", "theirs", _tenant_of_another_namespace),
    Case(
        "missing-credentials-secret",
        "CredentialsNotFound",
        "absent",
        _missing_credentials_secret,
    ),
    Case(
        "credentials-without-key", "CredentialsNotFound", "client_secret", _missing_credentials_key
    ),
    Case("credentials-key-renamed", "CredentialsNotFound", "'id'", _wrong_key_name),
    Case("wrong-credentials", "InvalidCredentials", "credentials Secret", _wrong_credentials),
    Case("missing-scope", "InsufficientScope", "update:client_keys", _read_only_scopes),
    Case(
        "client-not-found",
        "ClientNotFound",
        "spec.clientId",
        lambda w, a: {"clientId": "no-such-client"},
    ),
    Case(
        "namespace-not-allowed",
        "TenantNotAllowed",
        "allowedNamespaces",
        _cluster_tenant_other_namespaces,
    ),
    Case("client-not-allowed", "ClientNotAllowed", "allowedClientIds", _tenant_for_other_clients),
    Case("foreign-secret", "SecretConflict", "taken", _foreign_secret),
    Case("malformed-ca-bundle", "InvalidTenant", "spec.caBundle", _malformed_ca_bundle),
    Case(
        "credentials-not-offered",
        "CredentialsNotAllowed",
        "auth0rotator.dev/credentials=true",
        _credentials_not_offered,
    ),
    Case("domain-not-allowed", "DomainNotAllowed", "--allowed-domain", _domain_not_allowed),
    Case("tenant-unreachable", "Auth0Unavailable", "127.0.0.1:9", _unreachable),
    Case("private-key-jwt-client", "Auth0RequestRejected", "Private Key JWT", _private_key_jwt),
    Case(
        "selector-matches-nothing",
        "NoTargetsMatched",
        "app=nothing",
        lambda w, a: {
            "initialization": "Rotate",
            "restartTargets": [
                {"kind": "Deployment", "selector": {"matchLabels": {"app": "nothing"}}}
            ],
        },
        condition="RolloutComplete",
        rotates=True,
    ),
    Case(
        "restart-target-missing",
        "TargetNotFound",
        "ghost",
        lambda w, a: {
            "initialization": "Rotate",
            "restartTargets": [{"kind": "StatefulSet", "name": "ghost"}],
        },
        condition="RolloutComplete",
        rotates=True,
    ),
]


@pytest.fixture
def world(api: client.ApiClient, tenant_ns: str, fake_tenant: FakeTenant) -> Iterator[World]:
    """The case's namespace (with a working tenant "default") and its cleanups."""
    made = World(api, tenant_ns, fake_tenant)
    yield made
    for cleanup in made.cleanups:
        cleanup()


def _writes(fake: FakeTenant, client_id: str) -> list[dict[str, Any]]:
    """The secret changes asked of Auth0 for ``client_id`` (call log entries)."""
    return [
        c
        for c in fake.calls()
        if f"/clients/{client_id}" in c["path"]
        and c["endpoint"] in ("patch-client", "rotate-secret")
    ]


def test_the_catalogue_has_at_least_fifteen_distinct_cases() -> None:
    assert len(CASES) >= 15
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.reliability("accepted but unusable spec: documented reason, no Auth0 write")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_unusable_spec_ends_in_its_reason_without_harm(
    case: Case,
    world: World,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    figures: dict[str, float | str],
) -> None:
    healthy = f"ok-{uuid.uuid4().hex[:8]}"
    fake_tenant.create_client(healthy)
    kube.create(world.namespace, a0cs_body("healthy", healthy))
    overrides = case.spec(world, app_id)
    body = a0cs_body("bad", app_id)
    body["spec"].update(overrides)
    kube.create(world.namespace, body)
    client_id = body["spec"]["clientId"]

    if case.condition == "Ready":
        condition = kube.wait_reason(world.namespace, "bad", case.reason, timeout=60)
    else:
        condition = wait_for(
            lambda: (
                c
                if (c := kube.condition(world.namespace, "bad", case.condition)).get("reason")
                == case.reason
                else None
            ),
            60,
            f"{case.condition} {case.reason}",
        )
    assert condition["status"] == "False"
    assert case.says in condition["message"], condition["message"]

    def reported() -> bool:
        events = client.CoreV1Api(world.api).list_namespaced_event(
            world.namespace, field_selector="involvedObject.name=bad"
        )
        return case.reason in {e.reason for e in events.items}

    wait_for(reported, 15, f"a {case.reason} Event")

    # Harmless: no Auth0 write for that client; the neighbour still rotates.
    kube.wait_ready(world.namespace, "healthy", reason="Fetched")
    kube.annotate_rotate(world.namespace, "healthy", "still-works")
    kube.wait_ready(world.namespace, "healthy", reason="Rotated")
    assert fake_tenant.client(healthy)["secret_changes"] == 1
    writes = _writes(fake_tenant, client_id)
    figures["cases"] = 1
    if case.rotates:
        assert fake_tenant.client(client_id)["secret_changes"] == 1
        data = kube.secret(world.namespace, "bad") or {}
        assert data.get("client_secret") == fake_tenant.client(client_id)["client_secret"]
        return
    # Only Auth0 can say a scope is missing or a client uses private_key_jwt: the
    # attempt is refused and changes nothing; it is not repeated in a hot loop.
    applied = [c for c in writes if c["status"] < 400]
    figures["Auth0 changes for unusable specs"] = len(applied)
    figures["refused write attempts"] = len(writes) - len(applied)
    assert applied == [], writes
    if client_id != "no-such-client":
        assert fake_tenant.client(client_id)["secret_changes"] == 0
    if writes:
        # The first refusal, its status write's echo, then one per recheck interval.
        span = writes[-1]["time"] - writes[0]["time"]
        recheck: Any = TEST_ENGINE["recheck_after"]
        assert len(writes) <= 2 + span / recheck.total_seconds(), [c["time"] for c in writes]


@pytest.mark.reliability("TLS: an untrusted tenant certificate is refused (no way to switch off)")
def test_an_untrusted_tenant_certificate_is_refused_with_the_way_out(
    world: World, kube: Kube, app_id: str, tmp_path: Path
) -> None:
    """A tenant whose certificate no trusted CA signed: refused, and no switch turns it off."""
    port = free_port()
    other = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "auth0_rotator.cli",
            "fake-auth0",
            "--listen",
            f"127.0.0.1:{port}",
            "--tls-dir",
            str(tmp_path),  # a CA of its own, which the operator does not trust
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert other.stdout is not None and "serving at" in other.stdout.readline()
        world.tenant("selfsigned", "default-credentials", domain=f"127.0.0.1:{port}")
        body = a0cs_body("bad", app_id)
        body["spec"]["tenantRef"] = {"name": "selfsigned"}
        kube.create(world.namespace, body)
        condition = kube.wait_reason(world.namespace, "bad", "Auth0Unavailable", timeout=90)
        assert "TLS certificate is not trusted" in condition["message"]
        assert "spec.caBundle" in condition["message"]
    finally:
        os.killpg(other.pid, signal.SIGTERM)
        other.wait(timeout=10)
    # No code path can disable verification: no CERT_NONE, no verify=False anywhere.
    package = Path(__file__).resolve().parents[3] / "operator" / "auth0_rotator"
    sources = "\n".join(p.read_text() for p in package.rglob("*.py") if "fake_auth0" not in p.parts)
    assert "CERT_NONE" not in sources and "verify=False" not in sources
    assert "check_hostname = False" not in sources
