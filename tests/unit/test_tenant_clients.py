"""Tenant clients: replaced ones are closed once unused; one budget per Auth0 domain.

The registry runs for real (real Auth0Client objects with their connection
pools); only the Kubernetes reads are stood in for.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auth0_rotator import tenants as tenants_module
from auth0_rotator.auth0 import Auth0Client
from auth0_rotator.keypairs import generate_private_key
from auth0_rotator.labels import CREDENTIALS_LABEL
from auth0_rotator.model import ClientSecretSpec, TenantRef
from auth0_rotator.tenants import TenantProblem, TenantRegistry

RSA_KEY = generate_private_key(2048).reveal()
EC_KEY = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    .decode()
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class _Store:
    """Tenants and credentials Secrets as the registry reads them; versions on demand."""

    def __init__(self) -> None:
        self.version = 1
        self.labels = dict([CREDENTIALS_LABEL])
        self.tenants: dict[str, dict[str, Any]] = {}
        self.data = {"client_id": _b64("m2m"), "client_secret": _b64("s" * 48)}

    async def get_tenant(self, ref: TenantRef) -> dict[str, Any] | None:
        return self.tenants.get(ref.key)

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return {
            "metadata": {"resourceVersion": str(self.version), "labels": self.labels},
            "data": self.data,
        }

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        return {}


def _tenant(name: str, domain: str, rate: float = 2) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "generation": 1},
        "spec": {
            "domain": domain,
            "credentials": {"secretRef": {"name": "creds"}},
            "rateLimit": {"requestsPerSecond": rate, "burst": 10},
        },
    }


def _spec(tenant: str = "default") -> ClientSecretSpec:
    return ClientSecretSpec.parse(
        {
            "metadata": {"namespace": "ns", "name": "app", "uid": "u"},
            "spec": {"clientId": "app", "tenantRef": {"name": tenant}},
        }
    )


def _is_closed(client: Auth0Client) -> bool:
    return client.closed


def _body() -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "app"}, "spec": {"clientId": "app"}}


async def test_a_thousand_credential_changes_leave_a_handful_of_open_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Auth0Client] = []

    class Recorded(Auth0Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(tenants_module, "Auth0Client", Recorded)
    store = _Store()
    store.tenants["Auth0Tenant/ns/default"] = _tenant("default", "acme.auth0.com")
    tenants = TenantRegistry(store)
    try:
        async with tenants.session(_spec(), _body()) as held:  # a long reconcile
            for version in range(2, 1002):
                store.version = version
                async with tenants.session(_spec(), _body()) as access:
                    assert access.auth0.connection.client_id == "m2m"
            assert not _is_closed(held.auth0)  # still in use: not closed under its user
            assert len(made) == 1001
            assert sum(not c.closed for c in made) <= 3
        assert _is_closed(held.auth0)  # closed once its last user left
    finally:
        await tenants.aclose()
    assert tenants.open_clients() == 0 and all(c.closed for c in made)


async def test_tenants_naming_one_domain_share_one_budget_at_the_lowest_rate() -> None:
    store = _Store()
    for name, rate in (("one", 5), ("two", 1)):
        store.tenants[f"Auth0Tenant/ns/{name}"] = _tenant(name, "Acme.auth0.com", rate)
    tenants = TenantRegistry(store)
    try:
        async with (
            tenants.session(_spec("one"), _body()) as one,
            tenants.session(_spec("two"), _body()) as two,
        ):
            assert one.auth0.budget is two.auth0.budget
            assert one.auth0.budget.max_rate == pytest.approx(0.95)
            assert set(tenants.budgets()) == {"acme.auth0.com"}
    finally:
        await tenants.aclose()


async def test_credentials_must_be_offered_by_their_owner() -> None:
    store = _Store()
    store.labels = {}
    store.tenants["Auth0Tenant/ns/default"] = _tenant("default", "acme.auth0.com")
    tenants = TenantRegistry(store)
    with pytest.raises(TenantProblem) as refused:
        async with tenants.session(_spec(), _body()):
            pass
    assert refused.value.reason == "CredentialsNotAllowed"
    assert "auth0rotator.dev/credentials=true" in refused.value.message
    assert tenants.open_clients() == 0


async def test_a_malformed_ca_bundle_is_a_condition_not_an_exception() -> None:
    store = _Store()
    body = _tenant("default", "acme.auth0.com")
    body["spec"]["caBundle"] = (
        "-----BEGIN CERTIFICATE-----\nnot-a-cert\n-----END CERTIFICATE-----\n"
    )
    store.tenants["Auth0Tenant/ns/default"] = body
    tenants = TenantRegistry(store)
    with pytest.raises(TenantProblem) as refused:
        async with tenants.session(_spec(), _body()):
            pass
    assert refused.value.reason == "InvalidTenant"
    assert "spec.caBundle" in refused.value.message


async def test_a_credentials_secret_with_a_private_key_authenticates_with_it() -> None:
    store = _Store()
    key = generate_private_key(2048)
    store.data = {
        "client_id": _b64("m2m"),
        "private_key": _b64(key.reveal()),
        "key_id": _b64("kid-1"),
        "algorithm": _b64("PS256"),
    }
    store.tenants["Auth0Tenant/ns/default"] = _tenant("default", "acme.auth0.com")
    tenants = TenantRegistry(store)
    try:
        async with tenants.session(_spec(), _body()) as access:
            connection = access.auth0.connection
            assert connection.private_key == key and connection.client_secret is None
            assert (connection.key_id, connection.algorithm) == ("kid-1", "PS256")
    finally:
        await tenants.aclose()


@pytest.mark.parametrize(
    ("private_key", "algorithm", "said"),
    [
        ("not a key", "RS256", "is not an unencrypted PEM private key"),
        (EC_KEY, "RS256", "is not an RSA private key"),
        (RSA_KEY, "HS256", "cannot sign with 'HS256'"),
    ],
)
async def test_an_unusable_private_key_is_a_condition_that_never_quotes_it(
    private_key: str, algorithm: str, said: str
) -> None:
    store = _Store()
    store.data = {
        "client_id": _b64("m2m"),
        "private_key": _b64(private_key),
        "algorithm": _b64(algorithm),
    }
    store.tenants["Auth0Tenant/ns/default"] = _tenant("default", "acme.auth0.com")
    tenants = TenantRegistry(store)
    with pytest.raises(TenantProblem) as refused:
        async with tenants.session(_spec(), _body()):
            pass
    assert refused.value.reason == "InvalidCredentials"
    assert said in refused.value.message
    assert "'private_key'" in refused.value.message
    assert private_key.splitlines()[1 if "\n" in private_key else 0] not in refused.value.message
