"""The fake tenant's Private Key JWT: credentials endpoints, enabling keys, client assertions.

Answers are checked against the official OpenAPI excerpt
(``tests/data/auth0-credentials.subset.openapi.json``); limits and errors are
the ones SPEC §8 states.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from auth0_rotator.keypairs import (
    ASSERTION_TYPE,
    generate_private_key,
    public_key_pem,
    sign_assertion,
)
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator_dev.fake_auth0 import FakeAuth0Server
from tests.auth0.conftest import CreateClient, management_bearer
from tests.auth0.openapi import Reference, errors

CREDENTIALS = Reference("auth0-credentials.subset.openapi.json")
SCOPES = [
    "read:client_credentials",
    "create:client_credentials",
    "update:client_credentials",
    "delete:client_credentials",
]
KEY = generate_private_key(2048)
OTHER_KEY = generate_private_key(2048)


@pytest.mark.skipif(not CREDENTIALS.shared.exists(), reason="shared reference not beside this")
def test_copy_of_the_credentials_reference_is_current() -> None:
    assert CREDENTIALS.copy.read_bytes() == CREDENTIALS.shared.read_bytes()


_bearer = management_bearer


@pytest.fixture
async def bearer(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> dict[str, str]:
    return await _bearer(control, fake, create_client, SCOPES)


def _assertion(fake: FakeAuth0Server, client_id: str, key: SecretValue = KEY, **claims: Any) -> str:
    """An assertion with ``claims`` overriding the correct ones (``None`` drops a claim)."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"https://{fake.domain}/",
        "iat": now,
        "exp": now + 180,
        "jti": f"jti-{time.monotonic_ns()}",
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    private = serialization.load_pem_private_key(key.reveal().encode(), None)
    return jwt.encode(body, private, algorithm="RS256")


async def _token(
    control: httpx.AsyncClient, fake: FakeAuth0Server, client_id: str, assertion: str
) -> httpx.Response:
    return await control.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            "audience": f"https://{fake.domain}/api/v2/",
        },
    )


@pytest.fixture
async def jwt_app(create_client: CreateClient, fake: FakeAuth0Server) -> dict[str, Any]:
    """A client on Private Key JWT with KEY enabled, allowed to call the Management API."""
    return await create_client(
        "jwt-app", ["read:clients"], public_keys=[{"pem": public_key_pem(KEY), "name": "first"}]
    )


async def test_an_assertion_signed_by_an_enabled_key_gets_a_token(
    control: httpx.AsyncClient, fake: FakeAuth0Server, jwt_app: dict[str, Any]
) -> None:
    resp = await _token(control, fake, "jwt-app", _assertion(fake, "jwt-app"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["token_type"] == "Bearer"
    # The operator's own signer produces what the fake accepts.
    ours = sign_assertion(KEY, algorithm="RS256", client_id="jwt-app", domain=fake.domain)
    assert (await _token(control, fake, "jwt-app", ours.reveal())).status_code == 200


@pytest.mark.parametrize(
    ("why", "claims"),
    [
        ("another key", {"key": OTHER_KEY}),
        ("issuer is not the client", {"iss": "someone-else"}),
        ("subject is not the client", {"sub": "someone-else"}),
        ("audience is the Management API", {"aud": "AUDIENCE_API"}),
        ("audience is a list", {"aud": ["AUDIENCE_ROOT"]}),
        (
            "lives longer than five minutes",
            {"exp": int(time.time()) + 301, "iat": int(time.time())},
        ),
        ("expired", {"iat": int(time.time()) - 200, "exp": int(time.time()) - 10}),
        ("no jti", {"jti": None}),
        ("no exp", {"exp": None}),
    ],
)
async def test_a_bad_assertion_is_invalid_client(
    control: httpx.AsyncClient,
    fake: FakeAuth0Server,
    jwt_app: dict[str, Any],
    why: str,
    claims: dict[str, Any],
) -> None:
    key = claims.pop("key", KEY)
    if claims.get("aud") == "AUDIENCE_API":
        claims["aud"] = f"https://{fake.domain}/api/v2/"
    if claims.get("aud") == ["AUDIENCE_ROOT"]:
        claims["aud"] = [f"https://{fake.domain}/"]
    resp = await _token(control, fake, "jwt-app", _assertion(fake, "jwt-app", key, **claims))
    assert resp.status_code == 401, why
    assert resp.json()["error"] == "invalid_client", why


async def test_a_jti_is_accepted_once(
    control: httpx.AsyncClient, fake: FakeAuth0Server, jwt_app: dict[str, Any]
) -> None:
    assertion = _assertion(fake, "jwt-app", jti="only-once")
    assert (await _token(control, fake, "jwt-app", assertion)).status_code == 200
    again = await _token(control, fake, "jwt-app", assertion)
    assert (again.status_code, again.json()["error"]) == (401, "invalid_client")


async def test_the_algorithm_must_be_the_credentials(
    control: httpx.AsyncClient, fake: FakeAuth0Server, jwt_app: dict[str, Any]
) -> None:
    # KEY is registered for RS256: the same key signing PS256 is refused.
    ps256 = sign_assertion(KEY, algorithm="PS256", client_id="jwt-app", domain=fake.domain)
    assert (await _token(control, fake, "jwt-app", ps256.reveal())).status_code == 401


async def test_the_client_secret_does_not_authenticate_a_private_key_jwt_client(
    control: httpx.AsyncClient, fake: FakeAuth0Server, jwt_app: dict[str, Any]
) -> None:
    resp = await control.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "jwt-app",
            "client_secret": jwt_app["client_secret"],
            "audience": f"https://{fake.domain}/api/v2/",
        },
    )
    assert resp.status_code == 401


async def test_an_assertion_for_a_client_secret_client_is_refused(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    await create_client("secret-app", ["read:clients"])
    resp = await _token(control, fake, "secret-app", _assertion(fake, "secret-app"))
    assert (resp.status_code, resp.json()["error"]) == (401, "invalid_client")


async def _register(
    control: httpx.AsyncClient, bearer: dict[str, str], key: SecretValue, **extra: Any
) -> httpx.Response:
    body = {"credential_type": "public_key", "pem": public_key_pem(key), **extra}
    return await control.post("/api/v2/clients/jwt-app/credentials", json=body, headers=bearer)


async def _enable(
    control: httpx.AsyncClient, bearer: dict[str, str], *ids: str, method: bool = False
) -> httpx.Response:
    body: dict[str, Any] = {
        "client_authentication_methods": {
            "private_key_jwt": {"credentials": [{"id": i} for i in ids]}
        }
    }
    if method:
        body["token_endpoint_auth_method"] = None
    return await control.patch("/api/v2/clients/jwt-app", json=body, headers=bearer)


async def test_credentials_endpoints_answer_as_the_reference_says(
    control: httpx.AsyncClient,
    fake: FakeAuth0Server,
    jwt_app: dict[str, Any],
    bearer: dict[str, str],
) -> None:
    created = await _register(control, bearer, OTHER_KEY, name="second", alg="PS256")
    assert created.status_code == 201, created.text
    cred = created.json()
    path = "/clients/{client_id}/credentials"
    assert errors(CREDENTIALS.answer(path, "post", "201"), cred) == []
    assert (cred["name"], cred["alg"], cred["credential_type"]) == ("second", "PS256", "public_key")
    assert "pem" not in cred  # the key is never shown
    listed = await control.get("/api/v2/clients/jwt-app/credentials", headers=bearer)
    assert errors(CREDENTIALS.answer(path, "get"), listed.json()) == []
    assert [c["name"] for c in listed.json()] == ["first", "second"]
    one = f"/api/v2/clients/jwt-app/credentials/{cred['id']}"
    got = await control.get(one, headers=bearer)
    assert errors(CREDENTIALS.answer(path + "/{credential_id}", "get"), got.json()) == []
    patched = await control.patch(
        one, json={"expires_at": "2030-01-01T00:00:00.000Z"}, headers=bearer
    )
    assert patched.status_code == 201
    assert (
        errors(CREDENTIALS.answer(path + "/{credential_id}", "patch", "201"), patched.json()) == []
    )
    enabled = await _enable(control, bearer, listed.json()[0]["id"], cred["id"])
    assert enabled.status_code == 200, enabled.text
    assert errors(CREDENTIALS.answer("/clients/{id}", "patch"), enabled.json()) == []
    client = await control.get("/api/v2/clients/jwt-app", headers=bearer)
    assert errors(CREDENTIALS.answer("/clients/{id}", "get"), client.json()) == []
    methods = client.json()["client_authentication_methods"]["private_key_jwt"]["credentials"]
    assert [m["id"] for m in methods] == [listed.json()[0]["id"], cred["id"]]


async def test_at_most_two_credentials_are_enabled(
    control: httpx.AsyncClient, jwt_app: dict[str, Any], bearer: dict[str, str]
) -> None:
    first = (await control.get("/api/v2/clients/jwt-app/credentials", headers=bearer)).json()[0]
    second = (await _register(control, bearer, OTHER_KEY)).json()
    third = (await _register(control, bearer, generate_private_key(2048))).json()
    refused = await _enable(control, bearer, first["id"], second["id"], third["id"])
    assert refused.status_code == 400
    assert "Array is too long (3), maximum 2" in refused.json()["message"]
    state = (await control.get("/_fake/clients/jwt-app")).json()
    assert state["enabled_credentials"] == [first["id"]]  # unchanged


async def test_an_enabled_credential_cannot_be_deleted_and_a_deleted_one_is_gone(
    control: httpx.AsyncClient, jwt_app: dict[str, Any], bearer: dict[str, str]
) -> None:
    first = (await control.get("/api/v2/clients/jwt-app/credentials", headers=bearer)).json()[0]
    second = (await _register(control, bearer, OTHER_KEY)).json()
    one = "/api/v2/clients/jwt-app/credentials/{}"
    assert (await control.delete(one.format(first["id"]), headers=bearer)).status_code == 400
    assert (await control.delete(one.format(second["id"]), headers=bearer)).status_code == 204
    assert (await control.delete(one.format(second["id"]), headers=bearer)).status_code == 404
    assert (await control.get(one.format(second["id"]), headers=bearer)).status_code == 404
    # Detached, the first can go too: then nothing authenticates the client.
    assert (await _enable(control, bearer)).status_code == 200
    assert (await control.delete(one.format(first["id"]), headers=bearer)).status_code == 204


async def test_weak_or_non_rsa_keys_are_refused(
    control: httpx.AsyncClient, jwt_app: dict[str, Any], bearer: dict[str, str]
) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    curve = ec.generate_private_key(ec.SECP256R1()).public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    for key, said in ((weak, "1024 bits"), (curve, "RSA")):
        pem = key.public_bytes(serialization.Encoding.PEM, spki).decode()
        resp = await control.post(
            "/api/v2/clients/jwt-app/credentials",
            json={"credential_type": "public_key", "pem": pem},
            headers=bearer,
        )
        assert resp.status_code == 400
        assert said in resp.json()["message"]
    bad = await _register(control, bearer, KEY, alg="HS256")
    assert bad.status_code == 400
    extra = await _register(control, bearer, KEY, private_key="no")
    assert "Additional properties not allowed: private_key" in extra.json()["message"]


async def test_enabling_needs_token_endpoint_auth_method_null_on_a_secret_client(
    control: httpx.AsyncClient, create_client: CreateClient, bearer: dict[str, str]
) -> None:
    await create_client("jwt-app", ["read:clients"])  # on client secrets
    cred = (await _register(control, bearer, KEY)).json()
    refused = await _enable(control, bearer, cred["id"])
    assert refused.status_code == 400
    assert "token_endpoint_auth_method must be null" in refused.json()["message"]
    assert (await _enable(control, bearer, cred["id"], method=True)).status_code == 200
    view = (await control.get("/api/v2/clients/jwt-app", headers=bearer)).json()
    assert "token_endpoint_auth_method" not in view
    unknown = await _enable(control, bearer, "cred_doesnotexist")
    assert unknown.status_code == 400


async def test_scopes_are_checked_per_endpoint(
    control: httpx.AsyncClient,
    fake: FakeAuth0Server,
    create_client: CreateClient,
    jwt_app: dict[str, Any],
) -> None:
    keys_only = await _bearer(control, fake, create_client, ["update:client_keys"])
    listed = await control.get("/api/v2/clients/jwt-app/credentials", headers=keys_only)
    assert listed.status_code == 403
    assert "read:client_credentials" in listed.json()["message"]
    created = await _register(control, keys_only, OTHER_KEY)
    assert (created.status_code, "create:client_credentials" in created.text) == (403, True)
    enabling = await _enable(control, keys_only)
    assert enabling.status_code == 403
    assert "update:client_credentials" in enabling.json()["message"]


async def test_newly_enabled_keys_wait_for_propagation(
    control: httpx.AsyncClient,
    fake: FakeAuth0Server,
    jwt_app: dict[str, Any],
    bearer: dict[str, str],
) -> None:
    assert fake.tenant is not None
    fake.tenant.apply_settings({"propagation_delay": 3600})
    first = (await control.get("/api/v2/clients/jwt-app/credentials", headers=bearer)).json()[0]
    second = (await _register(control, bearer, OTHER_KEY)).json()
    assert (await _enable(control, bearer, first["id"], second["id"])).status_code == 200
    new = await _token(control, fake, "jwt-app", _assertion(fake, "jwt-app", OTHER_KEY))
    assert new.status_code == 401  # not yet
    old = await _token(control, fake, "jwt-app", _assertion(fake, "jwt-app", KEY))
    assert old.status_code == 200  # enabled before: still works


async def test_faults_apply_to_the_credentials_endpoints(
    control: httpx.AsyncClient, jwt_app: dict[str, Any], bearer: dict[str, str]
) -> None:
    await control.post(
        "/_fake/faults", json={"endpoint": "create-credential", "reset_after_commit": True}
    )
    with pytest.raises(httpx.HTTPError):
        await _register(control, bearer, OTHER_KEY, name="lost-answer")
    names = [c["name"] for c in (await control.get("/_fake/clients/jwt-app")).json()["credentials"]]
    assert names == ["first", "lost-answer"]  # committed, though the caller never heard
