"""The operator's Auth0 client against the fake tenant over HTTPS."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from auth0_rotator.auth0 import (
    Auth0Unavailable,
    ClientNotFound,
    InsufficientScope,
    InvalidCredentials,
    InvalidRequest,
    OutcomeUnknown,
    RetryPolicy,
)
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator_dev.fake_auth0 import FakeAuth0Server
from tests.auth0.conftest import CreateClient, MakeAuth0
from tests.auth0.tenant_view import calls, secret_of


async def test_reads_the_current_secret(make_auth0: MakeAuth0, create_client: CreateClient) -> None:
    app = await create_client("app")
    auth0 = await make_auth0()
    assert (await auth0.get_client_secret("app")).reveal() == app["client_secret"]


async def test_sets_the_secret_with_patch(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("app")
    auth0 = await make_auth0()
    await auth0.set_client_secret("app", SecretValue("p" * 64))
    assert await secret_of(control, "app") == "p" * 64
    assert [c["method"] for c in await calls(control, "patch-client")] == ["PATCH"]


async def test_rotates_the_secret_and_returns_auth0s_value(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    app = await create_client("app")
    auth0 = await make_auth0()
    new = await auth0.rotate_client_secret("app")
    assert new.reveal() == await secret_of(control, "app")
    assert new.reveal() != app["client_secret"]


async def test_one_token_serves_a_hundred_calls(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("app")
    auth0 = await make_auth0()
    for _ in range(100):
        await auth0.get_client_secret("app")
    assert len(await calls(control, "token")) == 1
    assert len(await calls(control, "get-client")) == 100


async def test_fifty_concurrent_first_calls_share_one_token_request(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("app")
    auth0 = await make_auth0()
    await control.post("/_fake/faults", json={"endpoint": "token", "latency": 0.3})
    await asyncio.gather(*(auth0.get_client_secret("app") for _ in range(50)))
    assert len(await calls(control, "token")) == 1
    assert auth0.tokens.fetches == 1


async def test_refused_token_is_refreshed_once_and_the_call_retried(
    make_auth0: MakeAuth0,
    create_client: CreateClient,
    control: httpx.AsyncClient,
    fake: FakeAuth0Server,
) -> None:
    app = await create_client("app")
    auth0 = await make_auth0()
    await auth0.get_client_secret("app")
    assert fake.tenant is not None
    fake.tenant.tokens.clear()  # Auth0 no longer honours the cached token

    assert (await auth0.get_client_secret("app")).reveal() == app["client_secret"]
    assert [c["status"] for c in await calls(control, "get-client")] == [200, 401, 200]
    assert len(await calls(control, "token")) == 2


async def test_429_waits_for_the_reset_instead_of_hammering(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("app")
    # The client believes it may send 100/s; the tenant allows 2/s with a burst of 3.
    auth0 = await make_auth0(rate=100, burst=100, retry=RetryPolicy(attempts=10, deadline=30))
    await control.put(
        "/_fake/settings", json={"rate_limit": {"requests_per_second": 2, "burst": 3}}
    )

    await asyncio.gather(*(auth0.get_client_secret("app") for _ in range(6)))

    statuses = [c["status"] for c in await calls(control, "get-client")]
    assert statuses.count(200) == 6
    # Every caller waits for x-ratelimit-reset after a 429 and the pace halves:
    # on average at most one refused request per caller, never a retry storm.
    assert statuses.count(429) <= 6
    assert auth0.budget.rate < auth0.budget.max_rate


async def test_idempotent_calls_are_retried_through_5xx(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    app = await create_client("app")
    auth0 = await make_auth0()
    await control.post("/_fake/faults", json={"endpoint": "get-client", "status": 503, "count": 2})
    assert (await auth0.get_client_secret("app")).reveal() == app["client_secret"]
    assert [c["status"] for c in await calls(control, "get-client")] == [503, 503, 200]


async def test_patch_is_retried_after_a_read_timeout(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("app")
    auth0 = await make_auth0(request_timeout=0.5)
    await control.post("/_fake/faults", json={"endpoint": "patch-client", "latency": 1.0})
    await auth0.set_client_secret("app", SecretValue("q" * 64))
    await asyncio.sleep(0.8)  # let the server finish the first, timed-out request
    assert await secret_of(control, "app") == "q" * 64
    assert len(await calls(control, "patch-client")) == 2


async def test_rotate_secret_is_sent_once_when_its_answer_is_lost(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("app")
    auth0 = await make_auth0()
    await control.post(
        "/_fake/faults", json={"endpoint": "rotate-secret", "reset_after_commit": True}
    )

    with pytest.raises(OutcomeUnknown) as exc:
        await auth0.rotate_client_secret("app")

    assert len(await calls(control, "rotate-secret")) == 1
    assert (await control.get("/_fake/clients/app")).json()["secret_changes"] == 1
    # The engine resolves the unknown outcome by reading the value back.
    recovered = await auth0.get_client_secret("app")
    assert recovered.reveal() == await secret_of(control, "app")
    assert recovered.reveal() not in str(exc.value)


async def test_rotate_secret_is_not_retried_on_5xx(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("app")
    auth0 = await make_auth0()
    await control.post("/_fake/faults", json={"endpoint": "rotate-secret", "status": 500})
    with pytest.raises(OutcomeUnknown):
        await auth0.rotate_client_secret("app")
    assert len(await calls(control, "rotate-secret")) == 1


async def test_rotate_secret_timeout_is_outcome_unknown_not_a_retry(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("app")
    auth0 = await make_auth0(request_timeout=0.5)
    await control.post("/_fake/faults", json={"endpoint": "rotate-secret", "latency": 1.0})
    with pytest.raises(OutcomeUnknown):
        await auth0.rotate_client_secret("app")
    await asyncio.sleep(0.8)  # let the server finish the request it received
    assert len(await calls(control, "rotate-secret")) == 1


async def test_token_endpoint_outage_is_auth0_unavailable_then_recovers(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    app = await create_client("app")
    auth0 = await make_auth0()
    await control.post("/_fake/faults", json={"endpoint": "token", "status": 503, "count": None})
    with pytest.raises(Auth0Unavailable) as exc:
        await auth0.get_client_secret("app")
    assert exc.value.retryable
    assert len(await calls(control, "token")) == 4  # FAST_RETRY.attempts, then give up
    await control.delete("/_fake/faults")
    assert (await auth0.get_client_secret("app")).reveal() == app["client_secret"]


async def test_unreachable_tenant_is_auth0_unavailable() -> None:
    from auth0_rotator.auth0 import Auth0Client, TenantConnection
    from auth0_rotator_dev.devcluster.cluster import free_port

    conn = TenantConnection(
        domain=f"127.0.0.1:{free_port()}", client_id="m2m", client_secret=SecretValue("s" * 48)
    )
    async with Auth0Client(conn, retry=RetryPolicy(attempts=2, base=0.01)) as auth0:
        with pytest.raises(Auth0Unavailable, match="cannot reach"):
            await auth0.get_client_secret("app")


async def test_missing_scope_is_named(make_auth0: MakeAuth0, create_client: CreateClient) -> None:
    await create_client("app")
    auth0 = await make_auth0(["read:client_keys"])
    with pytest.raises(InsufficientScope) as exc:
        await auth0.rotate_client_secret("app")
    assert exc.value.scopes == ("update:client_keys",)
    assert "update:client_keys" in str(exc.value)


async def test_reading_without_read_client_keys_is_insufficient_scope(
    make_auth0: MakeAuth0, create_client: CreateClient
) -> None:
    await create_client("app")
    auth0 = await make_auth0(["read:clients", "update:client_keys"])
    with pytest.raises(InsufficientScope, match="read:client_keys"):
        await auth0.get_client_secret("app")


async def test_unknown_client_is_client_not_found(make_auth0: MakeAuth0) -> None:
    auth0 = await make_auth0()
    with pytest.raises(ClientNotFound, match="no client ghost"):
        await auth0.set_client_secret("ghost", SecretValue("z" * 64))


async def test_wrong_management_secret_is_invalid_credentials_without_the_secret(
    make_auth0: MakeAuth0, create_client: CreateClient, fake: FakeAuth0Server
) -> None:
    await create_client("app")
    auth0 = await make_auth0()
    assert fake.tenant is not None
    fake.tenant.clients["m2m"].client_secret = "changed-elsewhere"
    with pytest.raises(InvalidCredentials) as exc:
        await auth0.get_client_secret("app")
    message = str(exc.value)
    assert "credentials Secret" in message
    assert auth0.connection.client_secret.reveal() not in message


async def test_private_key_jwt_client_rotation_is_rejected_as_invalid_request(
    make_auth0: MakeAuth0, create_client: CreateClient
) -> None:
    await create_client("jwt-app", private_key_jwt=True)
    auth0 = await make_auth0()
    with pytest.raises(InvalidRequest, match="rotate-secret for client jwt-app"):
        await auth0.rotate_client_secret("jwt-app")


async def test_verify_accepts_a_valid_secret_even_without_a_grant(
    make_auth0: MakeAuth0, create_client: CreateClient
) -> None:
    app = await create_client("app")  # no Management API grant: 403 after authentication
    auth0 = await make_auth0()
    assert await auth0.verify_client_secret("app", SecretValue(app["client_secret"]), within=5)


async def test_verify_counts_unauthorized_client_as_accepted(
    make_auth0: MakeAuth0, create_client: CreateClient
) -> None:
    app = await create_client("spa", grant_types=["authorization_code"])
    auth0 = await make_auth0()
    assert await auth0.verify_client_secret("spa", SecretValue(app["client_secret"]), within=5)


async def test_verify_rejects_a_wrong_secret_at_the_deadline(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("app")
    auth0 = await make_auth0()
    ok = await auth0.verify_client_secret("app", SecretValue("w" * 64), within=1, interval=0.2)
    assert ok is False
    assert len(await calls(control, "token")) >= 3


async def test_verify_rides_out_the_propagation_delay(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("app")
    auth0 = await make_auth0()
    await control.put("/_fake/settings", json={"propagation_delay": 1.0})
    new = await auth0.rotate_client_secret("app")
    assert await auth0.verify_client_secret("app", new, within=10, interval=0.2)
    token_calls = [c for c in await calls(control, "token") if c["client_id"] == "app"]
    assert token_calls[0]["status"] == 401
    assert token_calls[-1]["status"] == 403


async def test_a_tenant_ca_bundle_given_as_pem_text_is_trusted(
    fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    from auth0_rotator.auth0 import Auth0Client, TenantConnection

    app = await create_client("app")
    m2m = await create_client("m2m", ["read:client_keys"])
    assert fake.ca_file is not None
    conn = TenantConnection(
        domain=fake.domain,
        client_id="m2m",
        client_secret=SecretValue(m2m["client_secret"]),
        ca_pem=fake.ca_file.read_text(),
    )
    async with Auth0Client(conn, retry=RetryPolicy(attempts=1)) as auth0:
        assert (await auth0.get_client_secret("app")).reveal() == app["client_secret"]
    untrusted = TenantConnection(
        domain=fake.domain, client_id="m2m", client_secret=SecretValue(m2m["client_secret"])
    )
    async with Auth0Client(untrusted, retry=RetryPolicy(attempts=1)) as auth0:
        with pytest.raises(
            Auth0Unavailable, match=r"TLS certificate is not trusted.*spec\.caBundle"
        ):
            await auth0.get_client_secret("app")


def test_auth0_explanations_are_quoted_only_when_they_cannot_carry_a_secret() -> None:
    from auth0_rotator.auth0._answers import _quotable

    why = (
        "The client secret cannot be rotated for clients configured with the Private Key "
        "JWT authentication method."
    )
    assert _quotable(why) == why
    assert _quotable("invalid value Zq8xKp2LmN4vB7cD9eF1gH3jK5 for client_secret") == ""
    assert _quotable("") == ""
    assert len(_quotable("word " * 100)) <= 200
    path = "'Array is too long (3), maximum 2' on property a_b.private_key_jwt.credentials"
    assert _quotable(path) == path  # a property path is not a secret
    assert _quotable("value abcdefghijklmnopqrstuvwxyzABC rejected") == ""  # mixed case is
    assert _quotable("value abcdefghijklmnopqrstuvwxyz0123 rejected") == ""  # so are digits
