"""The fake Auth0 tenant behaves like Auth0 where the operator relies on it (SPEC §5)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest

from auth0_rotator_dev.fake_auth0 import FakeAuth0Server
from tests.auth0.conftest import ALL_SCOPES, CreateClient, management_bearer
from tests.auth0.tenant_view import calls, secret_of


def _audience(fake: FakeAuth0Server) -> str:
    return f"https://{fake.domain}/api/v2/"


async def _token(
    control: httpx.AsyncClient, fake: FakeAuth0Server, client_id: str, secret: str, **extra: Any
) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "audience": _audience(fake),
        **extra,
    }
    return await control.post("/oauth/token", data=form)


_bearer = management_bearer


# -- /oauth/token ----------------------------------------------------------------------


async def test_token_with_form_body_returns_bearer_token_with_granted_scopes(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    m2m = await create_client("m2m", ALL_SCOPES)
    resp = await _token(control, fake, "m2m", m2m["client_secret"])
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert body["scope"].split() == sorted(ALL_SCOPES)
    assert body["access_token"]


async def test_token_accepts_json_body_and_http_basic_authentication(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    m2m = await create_client("m2m", ALL_SCOPES)
    as_json = await control.post(
        "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": "m2m",
            "client_secret": m2m["client_secret"],
            "audience": _audience(fake),
        },
    )
    basic = base64.b64encode(f"m2m:{m2m['client_secret']}".encode()).decode()
    as_basic = await control.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "audience": _audience(fake)},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert as_json.status_code == 200
    assert as_basic.status_code == 200


async def test_token_with_wrong_secret_is_401_access_denied(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    await create_client("m2m", ALL_SCOPES)
    resp = await _token(control, fake, "m2m", "not-the-secret")
    assert resp.status_code == 401
    assert resp.json() == {"error": "access_denied", "error_description": "Unauthorized"}


async def test_grant_type_not_allowed_is_403_unauthorized_client_only_after_authentication(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    app = await create_client("spa-app", grant_types=["authorization_code"])
    right = await _token(control, fake, "spa-app", app["client_secret"])
    wrong = await _token(control, fake, "spa-app", "wrong")
    assert right.status_code == 403
    assert right.json()["error"] == "unauthorized_client"
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "access_denied"


async def test_unknown_audience_and_missing_grant_are_403_access_denied(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    app = await create_client("app")  # no grant for the Management API
    no_grant = await _token(control, fake, "app", app["client_secret"])
    unknown = await _token(
        control, fake, "app", app["client_secret"], audience="https://unknown.example/api/"
    )
    assert no_grant.status_code == 403
    assert no_grant.json()["error"] == "access_denied"
    assert "client-grant" in no_grant.json()["error_description"]
    assert unknown.status_code == 403
    assert "Service not enabled" in unknown.json()["error_description"]


# -- Management API: bearer tokens, scopes, errors -----------------------------------


async def test_management_errors_have_auth0_shape_and_json_utf8_content_type(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    headers = await _bearer(control, fake, create_client, ["read:clients"])
    missing = await control.get("/api/v2/clients/nope", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json; charset=utf-8"
    assert missing.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "The client does not exist",
        "errorCode": "inexistent_client",
    }


async def test_missing_and_invalid_bearer_tokens_are_401(
    control: httpx.AsyncClient, create_client: CreateClient
) -> None:
    await create_client("app")
    none = await control.get("/api/v2/clients/app")
    invalid = await control.get("/api/v2/clients/app", headers={"Authorization": "Bearer nope"})
    assert none.status_code == 401
    assert invalid.status_code == 401
    assert invalid.json()["message"] == "Invalid token"


async def test_expired_token_is_401(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    await control.put("/_fake/settings", json={"token_lifetime": 1})
    headers = await _bearer(control, fake, create_client, ALL_SCOPES)
    await asyncio.sleep(1.1)
    resp = await control.get("/api/v2/clients/m2m", headers=headers)
    assert resp.status_code == 401
    assert "Expired token" in resp.json()["message"]


async def test_insufficient_scope_names_the_expected_scopes(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    await create_client("app")
    headers = await _bearer(control, fake, create_client, ["read:clients"])
    resp = await control.post("/api/v2/clients/app/rotate-secret", headers=headers)
    assert resp.status_code == 403
    body = resp.json()
    assert body["errorCode"] == "insufficient_scope"
    assert "update:client_keys" in body["message"]


async def test_get_client_shows_the_secret_only_with_read_client_keys(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    app = await create_client("app")
    await create_client("reader", ["read:clients"])
    reader_secret = await secret_of(control, "reader")
    reader = (await _token(control, fake, "reader", reader_secret)).json()["access_token"]
    keys = await _bearer(control, fake, create_client, ["read:client_keys"])
    params = {"fields": "client_id,client_secret", "include_fields": "true"}

    without = await control.get(
        "/api/v2/clients/app", params=params, headers={"Authorization": f"Bearer {reader}"}
    )
    with_keys = await control.get("/api/v2/clients/app", params=params, headers=keys)

    assert without.json() == {"client_id": "app"}
    assert with_keys.json() == {"client_id": "app", "client_secret": app["client_secret"]}


async def test_get_client_can_exclude_fields(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    await create_client("app")
    headers = await _bearer(control, fake, create_client, ALL_SCOPES)
    resp = await control.get(
        "/api/v2/clients/app",
        params={"fields": "client_secret", "include_fields": "false"},
        headers=headers,
    )
    body = resp.json()
    assert "client_secret" not in body
    assert body["client_id"] == "app"
    assert body["grant_types"] == ["client_credentials"]


# -- secret changes ----------------------------------------------------------------------


async def test_patch_client_secret_needs_update_client_keys(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    app = await create_client("app")
    headers = await _bearer(control, fake, create_client, ["update:clients"])
    resp = await control.patch(
        "/api/v2/clients/app", json={"client_secret": "x" * 64}, headers=headers
    )
    assert resp.status_code == 403
    assert "update:client_keys" in resp.json()["message"]
    assert await secret_of(control, "app") == app["client_secret"]


async def test_patch_with_empty_secret_is_400_invalid_body(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    app = await create_client("app")
    headers = await _bearer(control, fake, create_client, ALL_SCOPES)
    resp = await control.patch("/api/v2/clients/app", json={"client_secret": ""}, headers=headers)
    assert resp.status_code == 400
    assert resp.json()["errorCode"] == "invalid_body"
    assert await secret_of(control, "app") == app["client_secret"]


async def test_patch_secret_kills_the_old_one_at_once(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    app = await create_client("app", grant_types=["client_credentials"], scopes=[])
    headers = await _bearer(control, fake, create_client, ALL_SCOPES)
    new = "n" * 64
    resp = await control.patch("/api/v2/clients/app", json={"client_secret": new}, headers=headers)
    assert resp.status_code == 200
    assert (await _token(control, fake, "app", app["client_secret"])).status_code == 401
    assert (await _token(control, fake, "app", new)).status_code == 200


@pytest.mark.parametrize("body", [None, b"null", b'{"id": "app"}'], ids=["empty", "null", "id"])
async def test_rotate_secret_accepts_bodies_real_sdks_send(
    control: httpx.AsyncClient,
    fake: FakeAuth0Server,
    create_client: CreateClient,
    body: bytes | None,
) -> None:
    app = await create_client("app")
    headers = await _bearer(control, fake, create_client, ["update:client_keys"])
    if body is not None:
        headers["Content-Type"] = "application/json"
    resp = await control.post("/api/v2/clients/app/rotate-secret", content=body, headers=headers)
    assert resp.status_code == 200
    new = resp.json()["client_secret"]
    assert new != app["client_secret"]
    assert len(new) == 64
    assert await secret_of(control, "app") == new


async def test_rotate_secret_is_refused_for_private_key_jwt_clients(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    await create_client("jwt-app", private_key_jwt=True)
    headers = await _bearer(control, fake, create_client, ["update:client_keys"])
    resp = await control.post("/api/v2/clients/jwt-app/rotate-secret", headers=headers)
    assert resp.status_code == 400
    assert "Private Key JWT" in resp.json()["message"]


async def test_new_secret_is_accepted_only_after_the_propagation_delay(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    app = await create_client("app", scopes=[])
    await control.put("/_fake/settings", json={"propagation_delay": 1.0})
    headers = await _bearer(control, fake, create_client, ALL_SCOPES)
    rotated = await control.post("/api/v2/clients/app/rotate-secret", headers=headers)
    new = rotated.json()["client_secret"]

    assert (await _token(control, fake, "app", app["client_secret"])).status_code == 401
    assert (await _token(control, fake, "app", new)).status_code == 401
    await asyncio.sleep(1.1)
    assert (await _token(control, fake, "app", new)).status_code == 200


# -- rate limit ---------------------------------------------------------------------------


async def test_rate_limit_answers_429_with_headers_when_the_bucket_is_empty(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    await create_client("app")
    headers = await _bearer(control, fake, create_client, ALL_SCOPES)
    await control.put(
        "/_fake/settings", json={"rate_limit": {"requests_per_second": 1, "burst": 3}}
    )

    answers = [await control.get("/api/v2/clients/app", headers=headers) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["x-ratelimit-limit"] == "3" for a in answers)
    assert answers[3].json()["errorCode"] == "too_many_requests"
    reset = int(answers[3].headers["x-ratelimit-reset"])
    assert reset >= int(fake.tenant.clock()) if fake.tenant else False


# -- faults and the control API -----------------------------------------------------------


async def test_status_fault_fails_the_next_n_calls_then_recovers(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    await create_client("app")
    headers = await _bearer(control, fake, create_client, ALL_SCOPES)
    await control.post("/_fake/faults", json={"endpoint": "get-client", "status": 503, "count": 2})
    statuses = [
        (await control.get("/api/v2/clients/app", headers=headers)).status_code for _ in range(3)
    ]
    assert statuses == [503, 503, 200]


async def test_latency_fault_delays_the_answer(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    await create_client("app")
    headers = await _bearer(control, fake, create_client, ALL_SCOPES)
    await control.post("/_fake/faults", json={"endpoint": "get-client", "latency": 2, "count": 1})
    with pytest.raises(httpx.ReadTimeout):
        await control.get("/api/v2/clients/app", headers=headers, timeout=0.5)
    ok = await control.get("/api/v2/clients/app", headers=headers, timeout=5)
    assert ok.status_code == 200


async def test_reset_after_commit_loses_the_answer_but_keeps_the_change(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    app = await create_client("app")
    headers = await _bearer(control, fake, create_client, ALL_SCOPES)
    await control.post(
        "/_fake/faults", json={"endpoint": "rotate-secret", "reset_after_commit": True}
    )
    with pytest.raises(httpx.RemoteProtocolError):
        await control.post("/api/v2/clients/app/rotate-secret", headers=headers)
    state = (await control.get("/_fake/clients/app")).json()
    assert state["secret_changes"] == 1
    assert state["client_secret"] != app["client_secret"]


async def test_token_endpoint_outage_lasts_until_faults_are_cleared(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    m2m = await create_client("m2m", ALL_SCOPES)
    await control.post("/_fake/faults", json={"endpoint": "token", "status": 503, "count": None})
    down = [
        (await _token(control, fake, "m2m", m2m["client_secret"])).status_code for _ in range(3)
    ]
    await control.delete("/_fake/faults")
    up = await _token(control, fake, "m2m", m2m["client_secret"])
    assert down == [503, 503, 503]
    assert up.status_code == 200


async def test_call_log_records_calls_without_secrets_and_can_be_cleared(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> None:
    app = await create_client("app")
    headers = await _bearer(control, fake, create_client, ALL_SCOPES)
    await control.get("/api/v2/clients/app", headers=headers)
    log = await calls(control)
    assert [(c["method"], c["endpoint"], c["status"], c["client_id"]) for c in log] == [
        ("POST", "token", 200, "m2m"),
        ("GET", "get-client", 200, "m2m"),
    ]
    raw = (await control.get("/_fake/calls")).text
    assert app["client_secret"] not in raw
    assert headers["Authorization"].split()[1] not in raw
    await control.delete("/_fake/calls")
    assert await calls(control) == []
