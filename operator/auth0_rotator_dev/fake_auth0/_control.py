"""The ``/_fake/`` control API, through which tests and the demo drive the fake.

It creates clients and Actions, reads state and the call log, injects faults
and changes settings.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from auth0_rotator_dev.fake_auth0 import _credentials as credentials
from auth0_rotator_dev.fake_auth0._http import ApiError, tenant_of
from auth0_rotator_dev.fake_auth0._state import (
    FakeAction,
    FakeClient,
    FakeCredential,
    Fault,
    Tenant,
    new_auth0_secret,
)

__all__ = ["add_control_routes", "seed_clients"]


async def _fake_create_action(request: web.Request) -> web.Response:
    data = await request.json()
    action = FakeAction(
        id=data["id"],
        name=data.get("name", data["id"]),
        secrets={n: (v, "2026-01-01T00:00:00.000Z") for n, v in data.get("secrets", {}).items()},
    )
    tenant_of(request).actions[action.id] = action
    return web.json_response(_fake_action_view(action), status=201)


def _fake_action_view(action: FakeAction) -> dict[str, Any]:
    return {
        "id": action.id,
        "secrets": {n: v for n, (v, _) in action.secrets.items()},
        "all_changes_deployed": action.all_changes_deployed,
        "versions": action.versions,
    }


async def _fake_get_action(request: web.Request) -> web.Response:
    action = tenant_of(request).actions.get(request.match_info["id"])
    if action is None:
        return web.json_response({"message": "no such action"}, status=404)
    return web.json_response(_fake_action_view(action))


async def _fake_rules_configs(request: web.Request) -> web.Response:
    return web.json_response(tenant_of(request).rules_configs)


async def _fake_create_client(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    try:
        (client,) = seed_clients(tenant, [await request.json()])
    except ApiError as exc:
        return exc.response()
    return web.json_response(_fake_client_view(client), status=201)


def seed_clients(tenant: Tenant, specs: list[dict[str, Any]]) -> list[FakeClient]:
    """Create clients from control-API JSON objects (see ``POST /_fake/clients``).

    ``public_keys: [{pem, alg?, name?, kid?}]`` (at most two) creates a client
    already on Private Key JWT with those keys registered and enabled;
    ``private_key_jwt: true`` alone, one on Private Key JWT with none enabled.
    """
    created = []
    for data in specs:
        client = _client_from_spec(data)
        keys = data.get("public_keys") or []
        if keys or data.get("private_key_jwt"):
            registered = [
                credentials.new_credential(
                    tenant,
                    key["pem"],
                    alg=key.get("alg", "RS256"),
                    name=key.get("name", ""),
                    kid=key.get("kid"),
                )
                for key in keys
            ]
            client.credentials = {c.id: c for c in registered}
            if len(registered) > credentials.MAX_ENABLED:
                raise ApiError(400, "at most two public keys can be enabled", "invalid_body")
            tenant.enable_credentials(client, [c.id for c in registered])
            for credential in registered:
                credential.accepted_from = 0.0  # set up before the test: accepted at once
        tenant.clients[client.client_id] = client
        tenant.issued_secrets.append(client.client_secret)
        created.append(client)
    return created


def _client_from_spec(data: dict[str, Any]) -> FakeClient:
    return FakeClient(
        client_id=data["client_id"],
        client_secret=data.get("client_secret") or new_auth0_secret(),
        name=data.get("name", data["client_id"]),
        app_type=data.get("app_type", "non_interactive"),
        grant_types=list(data.get("grant_types", ["client_credentials"])),
        grants={aud: list(scopes) for aud, scopes in data.get("grants", {}).items()},
        token_endpoint_auth_method=data.get("token_endpoint_auth_method", "client_secret_post"),
        client_metadata=dict(data.get("client_metadata", {})),
    )


def _fake_client_view(client: FakeClient) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "secret_changes": client.secret_changes,
        "accepted_from": client.accepted_from,
        "grant_types": client.grant_types,
        "grants": client.grants,
        "client_metadata": client.client_metadata,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "enabled_credentials": client.enabled_credentials,
        "credentials": [_fake_credential_view(client, c) for c in client.credentials.values()],
    }


def _fake_credential_view(client: FakeClient, credential: FakeCredential) -> dict[str, Any]:
    return {
        **credential.public_view(),
        "enabled": credential.id in (client.enabled_credentials or ()),
        "accepted_from": credential.accepted_from,
        "pem": credential.pem,
    }


async def _fake_get_client(request: web.Request) -> web.Response:
    client = tenant_of(request).clients.get(request.match_info["id"])
    if client is None:
        return web.json_response({"message": "no such client"}, status=404)
    return web.json_response(_fake_client_view(client))


async def _fake_calls(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    if request.method == "DELETE":
        tenant.calls.clear()
        return web.json_response([])
    return web.json_response([asdict(c) for c in tenant.calls])


async def _fake_faults(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    if request.method == "DELETE":
        tenant.faults.clear()
    elif request.method == "POST":
        data = await request.json()
        tenant.faults.append(
            Fault(
                endpoint=data["endpoint"],
                status=data.get("status"),
                latency=float(data.get("latency", 0.0)),
                reset_after_commit=bool(data.get("reset_after_commit", False)),
                count=data.get("count", 1),
            )
        )
    return web.json_response([asdict(f) for f in tenant.faults])


async def _fake_issued_secrets(request: web.Request) -> web.Response:
    return web.json_response(tenant_of(request).issued_secrets)


async def _fake_settings(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    if request.method == "PUT":
        tenant.apply_settings(await request.json())
    return web.json_response(tenant.settings_view())


def add_control_routes(app: web.Application) -> None:
    """Serve the control API from ``app``."""
    app.router.add_post("/_fake/actions", _fake_create_action)
    app.router.add_get("/_fake/actions/{id}", _fake_get_action)
    app.router.add_get("/_fake/rules-configs", _fake_rules_configs)
    app.router.add_post("/_fake/clients", _fake_create_client, name="fake-create-client")
    app.router.add_get("/_fake/clients/{id}", _fake_get_client, name="fake-get-client")
    app.router.add_route("GET", "/_fake/calls", _fake_calls, name="fake-calls")
    app.router.add_route("DELETE", "/_fake/calls", _fake_calls, name="fake-calls-clear")
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, "/_fake/faults", _fake_faults)
    for method in ("GET", "PUT"):
        app.router.add_route(method, "/_fake/settings", _fake_settings)
    app.router.add_get("/_fake/issued-secrets", _fake_issued_secrets)
