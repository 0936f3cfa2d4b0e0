"""The Auth0 client's Private Key JWT calls, against the fake tenant over HTTPS.

Request bodies are checked against the official OpenAPI excerpt as they are
sent (a recording transport), answers by the fake's own conformance tests.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx
import pytest

from auth0_rotator.auth0 import (
    Auth0Client,
    InsufficientScope,
    InvalidCredentials,
    InvalidRequest,
    OutcomeUnknown,
    TenantConnection,
)
from auth0_rotator.keypairs import generate_private_key, public_key_pem
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator_dev.fake_auth0 import FakeAuth0Server
from tests.auth0.conftest import FAST_RETRY, CreateClient, MakeAuth0
from tests.auth0.openapi import Reference, errors

CREDENTIALS = Reference("auth0-credentials.subset.openapi.json")
KEYPAIR_SCOPES = [
    "read:client_credentials",
    "create:client_credentials",
    "update:client_credentials",
    "delete:client_credentials",
]
KEY = generate_private_key(2048)
NEW_KEY = generate_private_key(2048)


class Recording(httpx.AsyncBaseTransport):
    """Passes requests on over TLS and keeps (method, path, JSON body) of each."""

    def __init__(self, ca_file: str) -> None:
        self.inner = httpx.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=ca_file))
        self.sent: list[tuple[str, str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        is_json = request.headers.get("content-type") == "application/json"
        self.sent.append(
            (request.method, request.url.path, json.loads(body) if is_json and body else None)
        )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def app(create_client: CreateClient) -> dict[str, Any]:
    return await create_client("app", public_keys=[{"pem": public_key_pem(KEY), "name": "first"}])


async def test_a_rotation_worth_of_calls_sends_what_the_reference_describes(
    fake: FakeAuth0Server, make_auth0: MakeAuth0, app: dict[str, Any]
) -> None:
    recording = Recording(str(fake.ca_file))
    auth0 = await make_auth0(KEYPAIR_SCOPES, transport=recording)
    before = await auth0.get_auth_methods("app")
    assert before.private_key_jwt and before.token_endpoint_auth_method is None
    (first,) = await auth0.list_credentials("app")
    assert before.enabled == (first.id,)
    new = await auth0.register_credential(
        "app", name="auth0-rotator/r1", pem=public_key_pem(NEW_KEY), alg="PS256"
    )
    assert (new.name, new.alg) == ("auth0-rotator/r1", "PS256") and new.kid
    await auth0.set_enabled_credentials("app", [first.id, new.id])
    assert await auth0.verify_private_key(
        "app", NEW_KEY, algorithm="PS256", key_id=new.kid, within=5, interval=0.1
    )
    assert await auth0.verify_private_key("app", KEY, algorithm="RS256", within=5, interval=0.1)
    await auth0.set_enabled_credentials("app", [new.id])
    assert await auth0.delete_credential("app", first.id) is True
    assert await auth0.delete_credential("app", first.id) is False  # gone already: fine
    assert [c.id for c in await auth0.list_credentials("app")] == [new.id]
    assert not await auth0.verify_private_key(
        "app", KEY, algorithm="RS256", within=0.3, interval=0.1
    )
    bodies = {(m, p): b for m, p, b in recording.sent if b is not None}
    post = bodies[("POST", "/api/v2/clients/app/credentials")]
    assert errors(CREDENTIALS.body("/clients/{client_id}/credentials", "post"), post) == []
    patch = bodies[("PATCH", "/api/v2/clients/app")]
    assert errors(CREDENTIALS.body("/clients/{id}", "patch"), patch) == []
    assert patch["client_authentication_methods"]["private_key_jwt"]["credentials"] == [
        {"id": new.id}
    ]


async def test_a_lost_register_answer_is_outcome_unknown_and_not_sent_again(
    control: httpx.AsyncClient, make_auth0: MakeAuth0, app: dict[str, Any]
) -> None:
    auth0 = await make_auth0(KEYPAIR_SCOPES)
    await control.post(
        "/_fake/faults", json={"endpoint": "create-credential", "reset_after_commit": True}
    )
    with pytest.raises(OutcomeUnknown) as lost:
        await auth0.register_credential(
            "app", name="auth0-rotator/lost", pem=public_key_pem(NEW_KEY), alg="RS256"
        )
    assert "list the client's credentials" in lost.value.message
    names = [c.name for c in await auth0.list_credentials("app")]
    assert names == ["first", "auth0-rotator/lost"]  # registered exactly once


async def test_deleting_an_enabled_credential_is_refused(
    make_auth0: MakeAuth0, app: dict[str, Any]
) -> None:
    auth0 = await make_auth0(KEYPAIR_SCOPES)
    (first,) = await auth0.list_credentials("app")
    with pytest.raises(InvalidRequest):
        await auth0.delete_credential("app", first.id)


async def test_a_third_enabled_credential_is_refused_with_auth0s_words(
    make_auth0: MakeAuth0, app: dict[str, Any]
) -> None:
    auth0 = await make_auth0(KEYPAIR_SCOPES)
    (first,) = await auth0.list_credentials("app")
    ids = [first.id]
    for n in range(2):
        key = generate_private_key(2048)
        cred = await auth0.register_credential(
            "app", name=f"k{n}", pem=public_key_pem(key), alg="RS256"
        )
        ids.append(cred.id)
    with pytest.raises(InvalidRequest) as refused:
        await auth0.set_enabled_credentials("app", ids)
    assert "Array is too long (3), maximum 2" in refused.value.message


@pytest.mark.parametrize(
    ("call", "scope"),
    [
        ("list", "read:client_credentials"),
        ("register", "create:client_credentials"),
        ("enable", "update:client_credentials"),
    ],
)
async def test_a_missing_scope_is_named(
    make_auth0: MakeAuth0, app: dict[str, Any], call: str, scope: str
) -> None:
    auth0 = await make_auth0(["read:client_keys", "update:client_keys"])
    with pytest.raises(InsufficientScope) as missing:
        if call == "list":
            await auth0.list_credentials("app")
        elif call == "register":
            await auth0.register_credential("app", name="x", pem=public_key_pem(KEY), alg="RS256")
        else:
            await auth0.set_enabled_credentials("app", [])
    assert scope in missing.value.message


async def test_the_management_client_can_authenticate_with_a_private_key(
    fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    await create_client(
        "m2m-jwt",
        public_keys=[{"pem": public_key_pem(KEY), "kid": "management-key-1"}],
        grants={f"https://{fake.domain}/api/v2/": KEYPAIR_SCOPES},
    )
    await create_client("app", public_keys=[{"pem": public_key_pem(NEW_KEY)}])

    def connection(key: SecretValue, **extra: Any) -> TenantConnection:
        return TenantConnection(
            domain=fake.domain,
            client_id="m2m-jwt",
            client_secret=None,
            private_key=key,
            ca_file=str(fake.ca_file),
            **extra,
        )

    async with Auth0Client(connection(KEY, key_id="management-key-1"), retry=FAST_RETRY) as auth0:
        assert [c.kid for c in await auth0.list_credentials("app")]
        first = await auth0.tokens.get()
        auth0.tokens.invalidate(first)
        # A second token needs a second assertion: the first jti was used.
        assert await auth0.tokens.get() != first
        assert auth0.tokens.fetches == 2
    async with Auth0Client(connection(NEW_KEY), retry=FAST_RETRY) as wrong:
        with pytest.raises(InvalidCredentials) as refused:
            await wrong.check_credentials()
        assert "private key" in refused.value.message
        assert NEW_KEY.reveal() not in refused.value.message
