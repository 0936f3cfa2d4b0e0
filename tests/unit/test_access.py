"""Who may reach what: the domain allow-list and the tenants' allow-lists, as plain rules."""

from __future__ import annotations

from typing import Any

import pytest

from auth0_rotator.access import (
    DomainAllowList,
    TenantProblem,
    check_namespace,
    check_reach,
    needs_namespace_labels,
)
from auth0_rotator.model import ClientSecretSpec, TenantRef, TenantSpec

M2M = "mgmt-client"


def _tenant(cluster: bool = True, **spec: Any) -> TenantSpec:
    ref = (
        TenantRef("ClusterAuth0Tenant", "shared", None)
        if cluster
        else TenantRef("Auth0Tenant", "default", "team-a")
    )
    secret_ref = {"name": "creds", **({"namespace": "ops"} if cluster else {})}
    body = {
        "spec": {"domain": "acme.eu.auth0.com", "credentials": {"secretRef": secret_ref}, **spec}
    }
    return TenantSpec.parse(ref, body)


def _spec(namespace: str = "team-a", client_id: str = "a-app", **spec: Any) -> ClientSecretSpec:
    return ClientSecretSpec.parse(
        {
            "metadata": {"namespace": namespace, "name": "app"},
            "spec": {"clientId": client_id, **spec},
        }
    )


def _refusal(call: Any) -> str:
    with pytest.raises(TenantProblem) as refused:
        call()
    return refused.value.reason


# -- domains -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "domain",
    ["acme.auth0.com", "acme.eu.auth0.com", "ACME.US.AUTH0.COM", "acme.auth0.com:443"],
)
def test_auth0_domains_are_allowed_by_default(domain: str) -> None:
    assert DomainAllowList().allows(domain)


@pytest.mark.parametrize(
    "domain",
    [
        "auth0.com",  # the suffix itself is no tenant
        "evil.example.com",
        "acme.auth0.com.evil.example",
        "acme.auth0.com:8443",  # ports need an explicit entry
        "127.0.0.1",
        "169.254.169.254",  # the cloud metadata address
        "[::1]:443",
        "localhost",
        "kubernetes.default.svc",
        "vault.vault.svc.cluster.local",
    ],
)
def test_other_hosts_ports_ips_and_cluster_names_are_refused_by_default(domain: str) -> None:
    assert not DomainAllowList().allows(domain)


def test_broad_wildcards_never_reach_ip_literals_or_cluster_local_names() -> None:
    anything = DomainAllowList.parse(["*", "*:*"])
    assert anything.allows("login.example.com") and anything.allows("login.example.com:8443")
    for local in ("127.0.0.1", "10.0.0.1:443", "localhost", "db.svc", "x.cluster.local"):
        assert not anything.allows(local), local


def test_explicit_entries_allow_local_fakes() -> None:
    allow = DomainAllowList.parse(["127.0.0.1:18443", "fake-auth0.auth0-fake.svc", "[::1]:*"])
    assert allow.allows("127.0.0.1:18443") and not allow.allows("127.0.0.1:18444")
    assert allow.allows("fake-auth0.auth0-fake.svc") and allow.allows("[::1]:9")
    assert DomainAllowList.parse(["*.svc.cluster.local"]).allows("a.b.svc.cluster.local")


@pytest.mark.parametrize("pattern", ["foo*.com", "https://acme.auth0.com", "a.com/path", "*.*.com"])
def test_malformed_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="allowed domain"):
        DomainAllowList.parse([pattern])


def test_a_refused_domain_says_how_to_allow_it() -> None:
    tenant = _tenant(domain="127.0.0.1:8443")
    with pytest.raises(TenantProblem) as refused:
        DomainAllowList().check(tenant)
    assert refused.value.reason == "DomainNotAllowed"
    assert "--allowed-domain" in refused.value.message and "allowedDomains" in refused.value.message


# -- namespaces -----------------------------------------------------------------------------


def test_a_cluster_tenant_without_allowed_namespaces_serves_none() -> None:
    tenant = _tenant()
    assert _refusal(lambda: check_namespace(tenant, "team-a", {})) == "TenantNotAllowed"


def test_every_namespace_is_an_explicit_choice() -> None:
    check_namespace(_tenant(allowedNamespaces={"all": True}), "anywhere", {})


def test_names_and_selectors_allow_their_namespaces_only() -> None:
    tenant = _tenant(
        allowedNamespaces={"names": ["team-a"], "namespaceSelector": {"matchLabels": {"t": "b"}}}
    )
    assert needs_namespace_labels(tenant)
    check_namespace(tenant, "team-a", {})
    check_namespace(tenant, "team-b", {"t": "b"})
    assert _refusal(lambda: check_namespace(tenant, "team-c", {"t": "c"})) == "TenantNotAllowed"


def test_a_namespaced_tenant_serves_its_own_namespace() -> None:
    tenant = _tenant(cluster=False)
    check_namespace(tenant, "team-a", {})
    assert not needs_namespace_labels(tenant)


# -- clients and Auth0-side targets ---------------------------------------------------------


@pytest.mark.parametrize("cluster", [True, False])
def test_the_management_client_is_refused_unless_listed(cluster: bool) -> None:
    tenant = _tenant(cluster)
    reason = _refusal(lambda: check_reach(tenant, _spec(client_id=M2M), {}, M2M))
    assert reason == "ClientNotAllowed"
    metadata = {"auth0Targets": [{"clientMetadata": {"clientId": M2M, "key": "k"}}]}
    assert _refusal(lambda: check_reach(tenant, _spec(**metadata), {}, M2M)) == "ClientNotAllowed"
    listed = _tenant(cluster, allowedClientIds=[M2M, "a-app"])
    check_reach(listed, _spec(client_id=M2M), {}, M2M)


def test_client_metadata_targets_obey_allowed_client_ids() -> None:
    tenant = _tenant(allowedClientIds=["a-app"])
    other = {"auth0Targets": [{"clientMetadata": {"clientId": "b-app", "key": "k"}}]}
    assert _refusal(lambda: check_reach(tenant, _spec(**other), {}, M2M)) == "ClientNotAllowed"


def test_a_cluster_tenant_allows_no_action_or_rules_config_unless_listed() -> None:
    action = {"auth0Targets": [{"actionSecret": {"actionId": "act-1", "name": "S"}}]}
    rules = {"auth0Targets": [{"rulesConfig": {"key": "K"}}]}
    closed = _tenant()
    assert _refusal(lambda: check_reach(closed, _spec(**action), {}, M2M)) == "TargetNotAllowed"
    assert _refusal(lambda: check_reach(closed, _spec(**rules), {}, M2M)) == "TargetNotAllowed"
    opened = _tenant(allowedActionIds=["act-1"], allowedRulesConfigKeys=["K"])
    check_reach(opened, _spec(**action), {}, M2M)
    check_reach(opened, _spec(**rules), {}, M2M)
    other = {"auth0Targets": [{"actionSecret": {"actionId": "act-2", "name": "S"}}]}
    assert _refusal(lambda: check_reach(opened, _spec(**other), {}, M2M)) == "TargetNotAllowed"


def test_a_namespaced_tenant_allows_any_action_until_it_lists_some() -> None:
    action = {"auth0Targets": [{"actionSecret": {"actionId": "act-1", "name": "S"}}]}
    check_reach(_tenant(cluster=False), _spec(**action), {}, M2M)
    narrowed = _tenant(cluster=False, allowedActionIds=["act-9"])
    assert _refusal(lambda: check_reach(narrowed, _spec(**action), {}, M2M)) == "TargetNotAllowed"


def test_namespace_access_keeps_each_team_to_its_own_clients_and_targets() -> None:
    tenant = _tenant(
        allowedNamespaces={"names": ["team-a", "team-b"]},
        allowedActionIds=["act-a", "act-b"],
        namespaceAccess=[
            {"names": ["team-a"], "clientIds": ["a-app"], "actionIds": ["act-a"]},
            {"namespaceSelector": {"matchLabels": {"team": "b"}}, "clientIds": ["b-app"]},
        ],
    )
    check_reach(tenant, _spec("team-a", "a-app"), {}, M2M)
    check_reach(tenant, _spec("team-b", "b-app"), {"team": "b"}, M2M)
    assert _refusal(lambda: check_reach(tenant, _spec("team-a", "b-app"), {}, M2M)) == (
        "ClientNotAllowed"
    )
    assert _refusal(lambda: check_reach(tenant, _spec("team-b", "a-app"), {"team": "b"}, M2M)) == (
        "ClientNotAllowed"
    )
    theirs = {"auth0Targets": [{"actionSecret": {"actionId": "act-a", "name": "S"}}]}
    assert (
        _refusal(
            lambda: check_reach(tenant, _spec("team-b", "b-app", **theirs), {"team": "b"}, M2M)
        )
        == "TargetNotAllowed"
    )
    check_reach(tenant, _spec("team-a", "a-app", **theirs), {}, M2M)
    # A namespace no entry matches may use nothing.
    assert _refusal(lambda: check_reach(tenant, _spec("team-c", "a-app"), {}, M2M)) == (
        "ClientNotAllowed"
    )
