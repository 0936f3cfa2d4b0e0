"""Attacks by a tenant of a shared cluster, each tried on the real API server and fake tenant.

Whoever may create an Auth0ClientSecret (or a tenant object) in one namespace
tries to reach what is not theirs: the management credentials, another team's
clients and Auth0-side targets, hosts inside the cluster, Secrets nobody
offered, another namespace's resources. Every attempt must end in a clear
reason on the resource, no Auth0 write, and no Secret written or disturbed.
Each test records its outcome for RELIABILITY.md's security section.
"""

from __future__ import annotations

import base64
import re
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from kubernetes import client

from tests.integration.operator.conftest import RunningOperator
from tests.integration.operator.harness import (
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
_WRITES = (
    "patch-client",
    "rotate-secret",
    "patch-action",
    "deploy-action",
    "put-rules-config",
    "patch-client-metadata",
)


def _writes(fake: FakeTenant) -> int:
    """Auth0 writes of any kind the fake has answered so far."""
    return sum(1 for c in fake.calls() if c["endpoint"] in _WRITES and c["status"] < 400)


def _calls_for(fake: FakeTenant, client_id: str) -> list[dict[str, Any]]:
    """Management API calls about exactly ``client_id`` (not ids it is a prefix of)."""
    pattern = re.compile(rf"/clients/{re.escape(client_id)}($|[/?])")
    return [c for c in fake.calls() if pattern.search(c["path"])]


def _calls_about(fake: FakeTenant, client_id: str) -> int:
    return len(_calls_for(fake, client_id))


@pytest.fixture
def cluster_tenants(api: client.ApiClient) -> Iterator[Callable[..., str]]:
    """``make(credentials_namespace, **spec)``: a ClusterAuth0Tenant, deleted afterwards."""
    custom = client.CustomObjectsApi(api)
    made: list[str] = []

    def make(credentials_namespace: str, **spec: Any) -> str:
        name = f"ct-{uuid.uuid4().hex[:8]}"
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
                        "secretRef": {
                            "name": "default-credentials",
                            "namespace": credentials_namespace,
                        }
                    },
                    **spec,
                },
            },
        )
        made.append(name)
        return name

    yield make
    for name in made:
        custom.delete_cluster_custom_object(GROUP, VERSION, "clusterauth0tenants", name)


@pytest.fixture
def other_ns(api: client.ApiClient, operator: RunningOperator) -> Iterator[str]:
    """A second ``t-`` namespace (another team) with its own tenant "default"."""
    core = client.CoreV1Api(api)
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"team": "b"}}})
    make_tenant(api, name, "default", M2M_ID, M2M_SECRET)
    try:
        yield name
    finally:
        core.delete_namespace(name)


def _patch_cluster_tenant(api: client.ApiClient, name: str, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).patch_cluster_custom_object(
        GROUP, VERSION, "clusterauth0tenants", name, {"spec": spec}
    )


def _record(attack: dict[str, float | str], reason: str, writes: int) -> None:
    attack.update(outcome="refused", reason=reason, auth0_writes=writes)


# -- isolation ------------------------------------------------------------------------------


@pytest.mark.security(
    "management client fetched through a cluster tenant with no allowedNamespaces"
)
def test_the_management_credentials_never_reach_a_namespace_by_default(
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    cluster_tenants: Callable[..., str],
    attack: dict[str, float | str],
) -> None:
    shared = cluster_tenants(tenant_ns)  # no allowedNamespaces: closed
    before, writes = _calls_about(fake_tenant, M2M_ID), _writes(fake_tenant)
    ref = {"kind": "ClusterAuth0Tenant", "name": shared}
    kube.create(tenant_ns, a0cs_body("grab", M2M_ID, tenantRef=ref, secretName="grabbed"))
    refused = kube.wait_reason(tenant_ns, "grab", "TenantNotAllowed")
    assert "no spec.allowedNamespaces" in refused["message"]

    # Opened to every namespace, the management application itself is still refused.
    _patch_cluster_tenant(api, shared, {"allowedNamespaces": {"all": True}})
    refused = kube.wait_reason(tenant_ns, "grab", "ClientNotAllowed")
    assert "management application" in refused["message"]
    assert kube.secret(tenant_ns, "grabbed") is None
    assert _calls_about(fake_tenant, M2M_ID) == before  # Auth0 was never asked for it
    _record(attack, "TenantNotAllowed, then ClientNotAllowed", _writes(fake_tenant) - writes)

    # Listing it is the explicit way (a KeyPair resource rotating the operator's own key).
    _patch_cluster_tenant(api, shared, {"allowedClientIds": [M2M_ID]})
    kube.wait_ready(tenant_ns, "grab", reason="Fetched")


TARGETS = {
    "clientMetadata": {"clientMetadata": {"clientId": "someone-elses-app", "key": "k"}},
    "actionSecret": {"actionSecret": {"actionId": "someone-elses-action", "name": "SECRET"}},
    "rulesConfig": {"rulesConfig": {"key": "SOMEONE_ELSES_KEY"}},
}


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        pytest.param(
            "clientMetadata",
            "ClientNotAllowed",
            marks=pytest.mark.security("auth0Targets: another client's client_metadata"),
        ),
        pytest.param(
            "actionSecret",
            "TargetNotAllowed",
            marks=pytest.mark.security("auth0Targets: set and deploy another team's Action"),
        ),
        pytest.param(
            "rulesConfig",
            "TargetNotAllowed",
            marks=pytest.mark.security("auth0Targets: overwrite any rules-config key"),
        ),
    ],
)
def test_auth0_side_targets_stay_inside_the_tenants_allow_lists(
    target: str,
    reason: str,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    cluster_tenants: Callable[..., str],
    attack: dict[str, float | str],
) -> None:
    shared = cluster_tenants(
        tenant_ns, allowedNamespaces={"names": [tenant_ns]}, allowedClientIds=[app_id]
    )
    writes = _writes(fake_tenant)
    body = a0cs_body(
        "app",
        app_id,
        tenantRef={"kind": "ClusterAuth0Tenant", "name": shared},
        auth0Targets=[TARGETS[target]],
    )
    kube.create(tenant_ns, body)
    refused = kube.wait_reason(tenant_ns, "app", reason)
    assert "spec.allowed" in refused["message"]
    assert kube.secret(tenant_ns, "app") is None
    assert _calls_for(fake_tenant, app_id) == []
    assert _writes(fake_tenant) == writes
    _record(attack, reason, _writes(fake_tenant) - writes)


class _Listener:
    """A TCP listener on 127.0.0.1 that counts connections (none may come)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.mark.parametrize(
    "domain",
    [
        pytest.param(
            "localhost:{port}", marks=pytest.mark.security("tenant domain: a cluster-local name")
        ),
        pytest.param(
            "169.254.169.254",
            marks=pytest.mark.security("tenant domain: the link-local metadata IP"),
        ),
    ],
)
def test_credentials_are_never_sent_to_a_domain_off_the_allow_list(
    domain: str,
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    attack: dict[str, float | str],
) -> None:
    listener = _Listener()
    try:
        target = domain.format(port=listener.port)
        make_tenant(api, tenant_ns, "elsewhere", M2M_ID, M2M_SECRET, domain=target)
        kube.create(tenant_ns, a0cs_body("app", app_id, tenantRef={"name": "elsewhere"}))
        refused = kube.wait_reason(tenant_ns, "app", "DomainNotAllowed")
        assert "--allowed-domain" in refused["message"]

        def tenant_reason() -> str | None:
            custom: Any = client.CustomObjectsApi(api)
            tenant = custom.get_namespaced_custom_object(
                GROUP, VERSION, tenant_ns, "auth0tenants", "elsewhere"
            )
            conditions = (tenant.get("status") or {}).get("conditions") or []
            return next((c["reason"] for c in conditions if c["type"] == "Ready"), None)

        wait_for(lambda: tenant_reason() == "DomainNotAllowed", 30, "the tenant's own reason")
        assert listener.accepted == 0
    finally:
        listener.close()
    _record(attack, "DomainNotAllowed (resource and tenant)", 0)


@pytest.mark.security("tenant credentials pointed at another application's Secret")
def test_a_secret_nobody_offered_is_never_used_as_credentials(
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    attack: dict[str, float | str],
) -> None:
    # The victim: an application's Secret, written by the operator (keys client_id and
    # client_secret: it looks exactly like management credentials).
    kube.create(tenant_ns, a0cs_body("victim", app_id))
    kube.wait_ready(tenant_ns, "victim", reason="Fetched")
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP,
        VERSION,
        tenant_ns,
        "auth0tenants",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Auth0Tenant",
            "metadata": {"name": "borrowed"},
            "spec": {"domain": DOMAIN, "credentials": {"secretRef": {"name": "victim"}}},
        },
    )
    other = f"{app_id}-x"
    fake_tenant.create_client(other)
    tokens_before = [c for c in fake_tenant.calls() if c["client_id"] == app_id]
    kube.create(tenant_ns, a0cs_body("thief", other, tenantRef={"name": "borrowed"}))
    refused = kube.wait_reason(tenant_ns, "thief", "CredentialsNotAllowed")
    assert "auth0rotator.dev/credentials=true" in refused["message"]
    # The victim's secret was never sent anywhere as a client secret.
    assert [c for c in fake_tenant.calls() if c["client_id"] == app_id] == tokens_before
    assert _calls_for(fake_tenant, other) == []
    _record(attack, "CredentialsNotAllowed", 0)


@pytest.mark.security("team B uses team A's client through a shared cluster tenant")
def test_namespace_access_keeps_each_team_to_its_own_clients(
    tenant_ns: str,
    other_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    cluster_tenants: Callable[..., str],
    attack: dict[str, float | str],
) -> None:
    theirs = f"{app_id}-b"
    fake_tenant.create_client(theirs)
    shared = cluster_tenants(
        tenant_ns,
        allowedNamespaces={"names": [tenant_ns, other_ns]},
        namespaceAccess=[
            {"names": [tenant_ns], "clientIds": [app_id]},
            {"namespaceSelector": {"matchLabels": {"team": "b"}}, "clientIds": [theirs]},
        ],
    )
    ref = {"kind": "ClusterAuth0Tenant", "name": shared}
    kube.create(other_ns, a0cs_body("steal", app_id, tenantRef=ref))
    refused = kube.wait_reason(other_ns, "steal", "ClientNotAllowed")
    assert other_ns in refused["message"] and "namespaceAccess" in refused["message"]
    kube.create(other_ns, a0cs_body("own", theirs, tenantRef=ref))
    kube.wait_ready(other_ns, "own", reason="Fetched")  # its own client works
    assert kube.secret(other_ns, "steal") is None
    assert _calls_for(fake_tenant, app_id) == []
    _record(attack, "ClientNotAllowed", 0)


@pytest.mark.parametrize(
    "through",
    [
        pytest.param(
            "cluster tenant",
            marks=pytest.mark.security(
                "a second resource claims a managed client (cluster tenant)"
            ),
        ),
        pytest.param(
            "own tenant, same domain",
            marks=pytest.mark.security("a second resource claims a managed client (own tenant)"),
        ),
    ],
)
def test_a_client_has_one_manager_across_namespaces(
    through: str,
    tenant_ns: str,
    other_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    cluster_tenants: Callable[..., str],
    attack: dict[str, float | str],
) -> None:
    if through == "cluster tenant":
        shared = cluster_tenants(tenant_ns, allowedNamespaces={"all": True})
        ref: dict[str, str] = {"kind": "ClusterAuth0Tenant", "name": shared}
    else:
        ref = {"kind": "Auth0Tenant", "name": "default"}  # each namespace's own, one domain
    kube.create(tenant_ns, a0cs_body("first", app_id, tenantRef=ref))
    kube.wait_ready(tenant_ns, "first", reason="Fetched")
    writes = _writes(fake_tenant)
    kube.create(other_ns, a0cs_body("second", app_id, tenantRef=ref, initialization="Rotate"))
    refused = kube.wait_reason(other_ns, "second", "ClientAlreadyManaged")
    assert f"{tenant_ns}/first" in refused["message"]
    assert kube.secret(other_ns, "second") is None
    assert fake_tenant.client(app_id)["secret_changes"] == 0
    _record(attack, "ClientAlreadyManaged (names the first)", _writes(fake_tenant) - writes)


@pytest.mark.security("many tenant objects naming one Auth0 domain (one rate budget each?)")
def test_tenant_objects_naming_one_domain_share_one_rate_budget(
    tenant_ns: str,
    other_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    operator: RunningOperator,
    attack: dict[str, float | str],
) -> None:
    other = f"{app_id}-b"
    fake_tenant.create_client(other)
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.create(other_ns, a0cs_body("app", other))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.wait_ready(other_ns, "app", reason="Fetched")
    tenants = operator.context.tenants
    assert tenants is not None
    mine = tenants._clients[f"Auth0Tenant/{tenant_ns}/default"].auth0
    theirs = tenants._clients[f"Auth0Tenant/{other_ns}/default"].auth0
    assert mine is not theirs and mine.budget is theirs.budget
    with urllib.request.urlopen(operator.metrics_url) as resp:  # noqa: S310
        text = resp.read().decode()
    series = [
        line
        for line in text.splitlines()
        if line.startswith("auth0_rotator_auth0_rate_limit_remaining{") and f'"{DOMAIN}"' in line
    ]
    assert len(series) == 1, series
    attack.update(outcome="one budget per domain", reason="-", auth0_writes=0)


@pytest.mark.security("a Secret in one namespace names a resource of another as its owner")
def test_a_managed_secret_reconciles_owners_in_its_own_namespace_only(
    api: client.ApiClient,
    tenant_ns: str,
    other_ns: str,
    kube: Kube,
    operator: RunningOperator,
    monkeypatch: pytest.MonkeyPatch,
    attack: dict[str, float | str],
) -> None:
    controller = operator.context.controller
    assert controller is not None
    queued: list[tuple[str, str]] = []
    real = controller.enqueue

    def spy(key: tuple[str, str], *args: Any, **kwargs: Any) -> None:
        queued.append(key)
        real(key, *args, **kwargs)

    monkeypatch.setattr(controller, "enqueue", spy)
    core = client.CoreV1Api(api)
    labels = {"app.kubernetes.io/managed-by": "auth0-rotator"}
    for name, owner in (("aimed", f"{tenant_ns}/victim"), ("marker", f"{other_ns}/mine")):
        core.create_namespaced_secret(
            other_ns,
            {
                "metadata": {
                    "name": name,
                    "labels": labels,
                    "annotations": {"auth0rotator.dev/owner": owner},
                }
            },
        )
    # The second Secret's owner is queued once its event is handled; the first one's
    # event came before it (and would be queued within milliseconds).
    wait_for(lambda: (other_ns, "mine") in queued, 30, "the marker Secret's event")
    time.sleep(1)
    assert (tenant_ns, "victim") not in queued
    attack.update(outcome="ignored", reason="-", auth0_writes=0)


@pytest.mark.security("a Secret planted at the staging Secret's name before a rotation")
def test_a_planted_staging_secret_is_never_read_or_overwritten(
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    attack: dict[str, float | str],
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    planted = "planted-" + "p" * 56
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        tenant_ns,
        {
            "metadata": {"name": "app.staging.auth0rotator.dev"},
            "stringData": {"value": planted},
        },
    )
    before = core.read_namespaced_secret("app.staging.auth0rotator.dev", tenant_ns)
    kube.annotate_rotate(tenant_ns, "app", "now")
    refused = kube.wait_reason(tenant_ns, "app", "SecretConflict")
    assert "app.staging.auth0rotator.dev" in refused["message"]
    after = core.read_namespaced_secret("app.staging.auth0rotator.dev", tenant_ns)
    assert after.metadata.resource_version == before.metadata.resource_version
    assert base64.b64decode(after.data["value"]).decode() == planted
    assert fake_tenant.client(app_id)["secret_changes"] == 0
    assert planted not in fake_tenant.issued_secrets()
    _record(attack, "SecretConflict", fake_tenant.client(app_id)["secret_changes"])


@pytest.mark.security("one namespace forces rotations back to back on a shared tenant")
def test_forced_rotations_wait_for_the_tenants_floor_and_are_not_lost(
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    attack: dict[str, float | str],
) -> None:
    make_tenant(api, tenant_ns, "floored", M2M_ID, M2M_SECRET)
    patch = partial(
        client.CustomObjectsApi(api).patch_namespaced_custom_object,
        GROUP,
        VERSION,
        tenant_ns,
        "auth0tenants",
        "floored",
    )
    patch({"spec": {"minForcedRotationInterval": "1h"}})
    kube.create(tenant_ns, a0cs_body("app", app_id, tenantRef={"name": "floored"}))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "one")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")
    kube.annotate_rotate(tenant_ns, "app", "two")
    held = wait_for(
        lambda: (
            (c := kube.condition(tenant_ns, "app", "Rotating")).get("reason") == "RotationHeld"
            and c
        ),
        30,
        "RotationHeld",
    )
    assert "minForcedRotationInterval" in held["message"]
    assert fake_tenant.client(app_id)["secret_changes"] == 1
    _record(attack, "RotationHeld (Rotating condition and Event)", 0)
    # Nothing is lost: once the floor allows it, the held request runs.
    patch({"spec": {"minForcedRotationInterval": "0s"}})
    wait_for(lambda: fake_tenant.client(app_id)["secret_changes"] == 2, 30, "the held rotation")
    status = kube.wait_ready(tenant_ns, "app", reason="Rotated")
    assert status["lastRotateRequest"] == "two"
