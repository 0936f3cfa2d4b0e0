"""Auth0-side targets (SPEC §1 ``auth0Targets``): Action secrets, rules configs, client metadata."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from auth0_rotator.auth0 import InsufficientScope, InvalidRequest, TargetNotFound
from auth0_rotator.secretvalue import SecretValue
from tests.auth0.conftest import CreateClient, MakeAuth0
from tests.auth0.tenant_view import calls

ACTION_SCOPES = ["read:actions", "update:actions", "create:actions"]
VALUE = SecretValue("n" * 64)


async def _action(control: httpx.AsyncClient, action_id: str = "act1") -> dict[str, Any]:
    resp = await control.get(f"/_fake/actions/{action_id}")
    data: dict[str, Any] = resp.json()
    return data


async def test_action_secret_is_set_others_kept_and_the_action_deployed(
    make_auth0: MakeAuth0, control: httpx.AsyncClient
) -> None:
    await control.post(
        "/_fake/actions",
        json={"id": "act1", "secrets": {"OTHER": "keep-me", "API_SECRET": "old"}},
    )
    auth0 = await make_auth0(ACTION_SCOPES)
    await auth0.set_action_secret("act1", "API_SECRET", VALUE)

    action = await _action(control)
    assert action["secrets"] == {"OTHER": "keep-me", "API_SECRET": VALUE.reveal()}
    assert action["all_changes_deployed"] is True
    assert action["versions"] == [{"OTHER": "keep-me", "API_SECRET": VALUE.reveal()}]
    assert [c["endpoint"] for c in await calls(control)] == [
        "token",
        "get-action",
        "patch-action",
        "deploy-action",
    ]


async def test_the_fake_drops_secrets_left_out_of_a_patch(
    make_auth0: MakeAuth0, control: httpx.AsyncClient
) -> None:
    # Why the client sends the other names back: the list is replaced.
    await control.post("/_fake/actions", json={"id": "act1", "secrets": {"OTHER": "o"}})
    auth0 = await make_auth0(ACTION_SCOPES)
    token = await auth0.tokens.get()
    resp = await control.patch(
        "/api/v2/actions/actions/act1",
        json={"secrets": [{"name": "NEW", "value": "v"}]},
        headers={"Authorization": f"Bearer {token.reveal()}"},
    )
    assert resp.status_code == 200
    assert (await _action(control))["secrets"] == {"NEW": "v"}


@pytest.mark.parametrize(
    ("missing", "endpoint"),
    [
        ("read:actions", "get-action"),
        ("update:actions", "patch-action"),
        ("create:actions", "deploy-action"),
    ],
)
async def test_each_missing_action_scope_is_named(
    missing: str, endpoint: str, make_auth0: MakeAuth0, control: httpx.AsyncClient
) -> None:
    await control.post("/_fake/actions", json={"id": "act1"})
    auth0 = await make_auth0([s for s in ACTION_SCOPES if s != missing])
    with pytest.raises(InsufficientScope) as caught:
        await auth0.set_action_secret("act1", "API_SECRET", VALUE)
    assert caught.value.scopes == (missing,)
    assert missing in caught.value.message
    assert VALUE.reveal() not in str(caught.value)
    assert (await calls(control))[-1]["endpoint"] == endpoint


async def test_a_missing_action_is_named(make_auth0: MakeAuth0) -> None:
    auth0 = await make_auth0(ACTION_SCOPES)
    with pytest.raises(TargetNotFound, match="action nope"):
        await auth0.set_action_secret("nope", "API_SECRET", VALUE)


async def test_rules_config_is_put(make_auth0: MakeAuth0, control: httpx.AsyncClient) -> None:
    auth0 = await make_auth0(["update:rules_configs"])
    await auth0.set_rules_config("API_SECRET", VALUE)
    assert (await control.get("/_fake/rules-configs")).json() == {"API_SECRET": VALUE.reveal()}


async def test_rules_config_without_scope_names_it(make_auth0: MakeAuth0) -> None:
    auth0 = await make_auth0(["read:client_keys"])
    with pytest.raises(InsufficientScope) as caught:
        await auth0.set_rules_config("API_SECRET", VALUE)
    assert caught.value.scopes == ("update:rules_configs",)


async def test_client_metadata_key_is_merged_into_the_existing_metadata(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("consumer", client_metadata={"team": "payments"})
    auth0 = await make_auth0(["read:clients", "update:clients"])
    await auth0.set_client_metadata("consumer", "api_secret", VALUE)
    got = (await control.get("/_fake/clients/consumer")).json()["client_metadata"]
    assert got == {"team": "payments", "api_secret": VALUE.reveal()}


async def test_client_metadata_without_update_scope_names_it(
    make_auth0: MakeAuth0, create_client: CreateClient
) -> None:
    await create_client("consumer")
    auth0 = await make_auth0(["read:clients"])
    with pytest.raises(InsufficientScope) as caught:
        await auth0.set_client_metadata("consumer", "api_secret", VALUE)
    assert "update:clients" in caught.value.scopes


async def test_a_value_too_long_for_client_metadata_is_refused_before_sending(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("consumer")
    auth0 = await make_auth0(["read:clients", "update:clients"])
    long_value = SecretValue("L" * 256)
    with pytest.raises(InvalidRequest, match="255 characters") as caught:
        await auth0.set_client_metadata("consumer", "api_secret", long_value)
    assert long_value.reveal() not in str(caught.value)
    assert await calls(control) == []
    assert (await control.get("/_fake/clients/consumer")).json()["client_metadata"] == {}


async def test_an_eleventh_metadata_key_is_refused_not_dropped(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    full = {f"k{i}": "v" for i in range(10)}
    await create_client("consumer", client_metadata=full)
    auth0 = await make_auth0(["read:clients", "update:clients"])
    with pytest.raises(InvalidRequest, match="10 keys"):
        await auth0.set_client_metadata("consumer", "api_secret", VALUE)
    assert (await control.get("/_fake/clients/consumer")).json()["client_metadata"] == full
    # Replacing an existing key is within the limit.
    await auth0.set_client_metadata("consumer", "k0", VALUE)
    got = (await control.get("/_fake/clients/consumer")).json()["client_metadata"]
    assert got["k0"] == VALUE.reveal() and len(got) == 10


async def test_the_fake_enforces_auth0s_metadata_limits(
    make_auth0: MakeAuth0, create_client: CreateClient, control: httpx.AsyncClient
) -> None:
    await create_client("consumer")
    auth0 = await make_auth0(["update:clients"])
    token = await auth0.tokens.get()
    headers = {"Authorization": f"Bearer {token.reveal()}"}
    too_many = {f"k{i}": "v" for i in range(11)}
    for body in ({"client_metadata": too_many}, {"client_metadata": {"k": "x" * 256}}):
        resp = await control.patch("/api/v2/clients/consumer", json=body, headers=headers)
        assert resp.status_code == 400, body
