"""The fake tenant's HTTP API (aiohttp): Auth0's endpoints plus a ``/_fake/`` control API.

Auth0 endpoints follow SPEC §5 and the official OpenAPI description: error
bodies ``{"statusCode","error","message","errorCode"}`` as
``application/json; charset=utf-8``, ``x-ratelimit-*`` headers on every
Management API answer, scopes checked per endpoint. The control API creates
clients, reads the call log, injects faults and changes settings.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from auth0_rotator_dev.fake_auth0._state import (
    CallRecord,
    FakeAction,
    FakeClient,
    Fault,
    IssuedToken,
    Tenant,
    new_auth0_secret,
)

__all__ = ["TENANT_KEY", "make_app", "seed_clients"]

TENANT_KEY = web.AppKey("tenant", Tenant)
_CLIENT_ID = web.RequestKey("client_id", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_READ_CLIENT = ("read:clients", "read:client_keys", "read:client_credentials")
_READ_SECRET = ("read:client_keys", "read:client_credentials")
_UPDATE_CLIENT = ("update:clients", "update:client_keys")
_UPDATE_SECRET = ("update:client_keys",)
_PATCHABLE = {"client_secret", "name", "client_metadata"}
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _ApiError(Exception):
    """An Auth0-shaped error answer."""

    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "statusCode": self.status,
            "error": _REASONS.get(self.status, "Error"),
            "message": self.message,
        }
        if self.error_code:
            body["errorCode"] = self.error_code
        return web.json_response(body, status=self.status)


class _OAuthError(Exception):
    """An error answer of the Authentication API (``/oauth/token``)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> web.Response:
        return web.json_response(
            {"error": self.error, "error_description": self.description}, status=self.status
        )


def _tenant(request: web.Request) -> Tenant:
    return request.app[TENANT_KEY]


# -- middleware: faults, rate limit, call log -----------------------------------------


def _endpoint_of(request: web.Request) -> str:
    route = request.match_info.route
    return route.name or "unknown"


@web.middleware
async def _auth0_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    tenant = _tenant(request)
    if request.path.startswith("/_fake/"):
        return await handler(request)
    endpoint = _endpoint_of(request)
    # Read (and cache) the body now: a caller that times out during injected
    # latency must not stop the server from processing what it received.
    await request.read()
    fault = tenant.take_fault(endpoint)
    if fault and fault.latency:
        await asyncio.sleep(fault.latency)
    response = await _answer(request, handler, tenant, endpoint, fault)
    tenant.calls.append(
        CallRecord(
            method=request.method,
            path=request.path_qs,
            endpoint=endpoint,
            status=response.status,
            time=tenant.clock(),
            client_id=request.get(_CLIENT_ID),
        )
    )
    if fault and fault.reset_after_commit and response.status < 400:
        # The change is committed, but the caller never learns it.
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
    return response


async def _answer(
    request: web.Request, handler: Handler, tenant: Tenant, endpoint: str, fault: Fault | None
) -> web.StreamResponse:
    if fault and fault.status:
        return _fault_response(endpoint, fault.status)
    # The Management API is rate limited per tenant; the token endpoint is not here.
    taken = tenant.bucket.take() if endpoint != "token" else None
    response: web.StreamResponse
    if taken is not None and not taken[0]:
        response = _ApiError(429, "Global limit has been reached", "too_many_requests").response()
    else:
        try:
            response = await handler(request)
        except (_ApiError, _OAuthError) as exc:
            response = exc.response()
    if taken is not None:
        _set_rate_headers(response, tenant, taken)
    return response


def _set_rate_headers(
    response: web.StreamResponse, tenant: Tenant, taken: tuple[bool, int, int]
) -> None:
    _, remaining, reset = taken
    response.headers["x-ratelimit-limit"] = str(tenant.bucket.burst)
    response.headers["x-ratelimit-remaining"] = str(remaining)
    response.headers["x-ratelimit-reset"] = str(reset)


def _fault_response(endpoint: str, status: int) -> web.Response:
    if endpoint == "token":
        if status == 429:
            return _OAuthError(429, "too_many_requests", "Rate limit exceeded").response()
        return _OAuthError(status, "server_error", "Service unavailable (injected)").response()
    code = "too_many_requests" if status == 429 else None
    return _ApiError(status, f"{_REASONS.get(status, 'Error')} (injected)", code).response()


# -- /oauth/token ---------------------------------------------------------------------


async def _read_params(request: web.Request) -> dict[str, str]:
    raw = await request.read()
    ctype = request.content_type
    if ctype == "application/json":
        try:
            data = json.loads(raw or b"{}")
        except ValueError as exc:
            raise _OAuthError(400, "invalid_request", "Invalid JSON body") from exc
        if not isinstance(data, dict):
            raise _OAuthError(400, "invalid_request", "Body must be a JSON object")
        return {k: v for k, v in data.items() if isinstance(v, str)}
    if ctype in ("application/x-www-form-urlencoded", ""):
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    raise _OAuthError(400, "invalid_request", f"Unsupported content type {ctype}")


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _OAuthError(401, "access_denied", "Unauthorized") from exc
    user, _, password = decoded.partition(":")
    return user, password


async def _token(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    params = await _read_params(request)
    basic = _basic_credentials(request)
    client_id = basic[0] if basic else params.get("client_id", "")
    secret = basic[1] if basic else params.get("client_secret", "")
    if client_id:
        request[_CLIENT_ID] = client_id
    grant_type = params.get("grant_type")
    if not grant_type:
        raise _OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
    if grant_type != "client_credentials":
        raise _OAuthError(403, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
    client = tenant.clients.get(client_id)
    now = tenant.clock()
    if (
        client is None
        or client.private_key_jwt
        or not secret
        or secret != client.client_secret
        or now < client.accepted_from
    ):
        raise _OAuthError(401, "access_denied", "Unauthorized")
    if "client_credentials" not in client.grant_types:
        raise _OAuthError(
            403,
            "unauthorized_client",
            "Grant type 'client_credentials' not allowed for the client.",
        )
    audience = params.get("audience", "")
    if not audience:
        raise _OAuthError(
            403,
            "access_denied",
            "No audience parameter was provided, and no default audience has been configured",
        )
    if audience not in tenant.known_audiences():
        raise _OAuthError(403, "access_denied", f"Service not enabled within domain: {audience}")
    if audience not in client.grants:
        raise _OAuthError(
            403,
            "access_denied",
            f'Client is not authorized to access "{audience}". '
            'You need to create a "client-grant" associated to this API.',
        )
    token, issued = tenant.issue_token(client, audience)
    return web.json_response(
        {
            "access_token": token,
            "expires_in": tenant.settings.token_lifetime,
            "scope": " ".join(sorted(issued.scopes)),
            "token_type": "Bearer",
        }
    )


# -- Management API -------------------------------------------------------------------


def _bearer(request: web.Request, any_of: tuple[str, ...]) -> IssuedToken:
    tenant = _tenant(request)
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise _ApiError(401, "Missing authentication")
    issued = tenant.tokens.get(header[7:].strip())
    if issued is None:
        raise _ApiError(401, "Invalid token")
    request[_CLIENT_ID] = issued.client_id
    if issued.expires_at <= tenant.clock():
        raise _ApiError(401, "Expired token received for JSON Web Token validation")
    if issued.audience != tenant.management_audience:
        raise _ApiError(401, "Bad audience: " + issued.audience)
    if not issued.scopes.intersection(any_of):
        raise _ApiError(
            403, f"Insufficient scope, expected any of: {','.join(any_of)}", "insufficient_scope"
        )
    return issued


def _client_or_404(request: web.Request) -> FakeClient:
    client = _tenant(request).clients.get(request.match_info["id"])
    if client is None:
        raise _ApiError(404, "The client does not exist", "inexistent_client")
    return client


def _client_view(tenant: Tenant, client: FakeClient, with_secret: bool) -> dict[str, Any]:
    view = client.public_view(tenant.name)
    if with_secret:
        view["client_secret"] = client.client_secret
    return view


async def _get_client(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    issued = _bearer(request, _READ_CLIENT)
    client = _client_or_404(request)
    view = _client_view(tenant, client, bool(issued.scopes.intersection(_READ_SECRET)))
    fields = [f for f in request.query.get("fields", "").split(",") if f]
    if fields:
        include = request.query.get("include_fields", "true").lower() != "false"
        view = {k: v for k, v in view.items() if (k in fields) == include}
    return web.json_response(view)


async def _json_body(request: web.Request, *, allow_empty: bool) -> Any:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return None
        raise _ApiError(400, "Payload validation error: 'Expected type object'", "invalid_body")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _ApiError(400, "Invalid request payload JSON format", "invalid_body") from exc


async def _patch_client(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    issued = _bearer(request, _UPDATE_CLIENT)
    client = _client_or_404(request)
    body = await _json_body(request, allow_empty=False)
    if not isinstance(body, dict):
        raise _ApiError(400, "Payload validation error: 'Expected type object'", "invalid_body")
    unknown = sorted(set(body) - _PATCHABLE)
    if unknown:
        raise _ApiError(
            400,
            f"Payload validation error: 'Additional properties not allowed: {','.join(unknown)}'",
            "invalid_body",
        )
    if set(body) - {"client_secret"} and "update:clients" not in issued.scopes:
        # Keys need update:client_keys; every other field needs update:clients.
        raise _ApiError(
            403,
            "Some fields cannot be updated with the permissions granted by the bearer token "
            "scopes. The following scopes are required: update:clients",
            "insufficient_scope",
        )
    if "client_secret" in body:
        if not issued.scopes.intersection(_UPDATE_SECRET):
            raise _ApiError(
                403,
                "Some fields cannot be updated with the permissions granted by the bearer token "
                "scopes. The following scopes are required: update:client_keys",
                "insufficient_scope",
            )
        secret = body["client_secret"]
        if not isinstance(secret, str):
            raise _ApiError(
                400,
                "Payload validation error: 'Expected type string' on property client_secret",
                "invalid_body",
            )
        if not secret:
            raise _ApiError(
                400,
                "Payload validation error: 'String is too short (0 chars), minimum 1' on "
                "property client_secret (The secret used to sign tokens for the client).",
                "invalid_body",
            )
        if secret != client.client_secret:
            tenant.change_secret(client, secret)
    if isinstance(body.get("name"), str):
        client.name = body["name"]
    if "client_metadata" in body:
        metadata = body["client_metadata"]
        if not isinstance(metadata, dict):
            raise _ApiError(400, "Payload validation error: 'Expected type object'", "invalid_body")
        _check_client_metadata(metadata)
        client.client_metadata = {str(k): str(v) for k, v in metadata.items() if v is not None}
    with_secret = bool(issued.scopes.intersection(_READ_SECRET + _UPDATE_SECRET))
    return web.json_response(_client_view(tenant, client, with_secret))


_METADATA_KEY = re.compile(r"^[A-Za-z0-9:,\-+=_*?\"/\\()<>@\t ]{1,255}$")


def _check_client_metadata(metadata: dict[str, Any]) -> None:
    """Auth0's ClientMetadata limits: at most 10 keys, names and string values of <= 255."""
    if len(metadata) > 10:
        raise _ApiError(
            400,
            "Payload validation error: 'Too many properties defined "
            f"({len(metadata)}), maximum 10' on property client_metadata",
            "invalid_body",
        )
    for key, value in metadata.items():
        if not _METADATA_KEY.match(key):
            raise _ApiError(
                400,
                f"Payload validation error: invalid client_metadata key {key!r}",
                "invalid_body",
            )
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise _ApiError(
                400,
                "Payload validation error: 'String is too long, maximum 255' on property "
                f"client_metadata.{key}",
                "invalid_body",
            )


async def _rotate_secret(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    _bearer(request, _UPDATE_SECRET)
    client = _client_or_404(request)
    body = await _json_body(request, allow_empty=True)
    if body is not None and not isinstance(body, dict):
        raise _ApiError(400, "Payload validation error: 'Expected type object'", "invalid_body")
    if client.private_key_jwt:
        raise _ApiError(
            400,
            "The client secret cannot be rotated for clients configured with the Private Key "
            "JWT authentication method.",
            "invalid_body",
        )
    tenant.change_secret(client, new_auth0_secret())
    return web.json_response(_client_view(tenant, client, with_secret=True))


def _action_or_404(request: web.Request) -> FakeAction:
    action = _tenant(request).actions.get(request.match_info["id"])
    if action is None:
        raise _ApiError(404, "The action does not exist.", "not_found")
    return action


async def _get_action(request: web.Request) -> web.Response:
    _bearer(request, ("read:actions",))
    return web.json_response(_action_or_404(request).public_view())


_ACTION_PATCHABLE = {"name", "supported_triggers", "code", "dependencies", "runtime", "secrets"}


async def _patch_action(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    _bearer(request, ("update:actions",))
    action = _action_or_404(request)
    body = await _json_body(request, allow_empty=False)
    if not isinstance(body, dict):
        raise _ApiError(400, "Payload validation error: 'Expected type object'", "invalid_body")
    unknown = sorted(set(body) - _ACTION_PATCHABLE)
    if unknown:
        raise _ApiError(
            400,
            f"Payload validation error: 'Additional properties not allowed: {','.join(unknown)}'",
            "invalid_body",
        )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(tenant.clock()))
    if "secrets" in body:
        given = body["secrets"]
        if not isinstance(given, list) or not all(
            isinstance(x, dict) and isinstance(x.get("name"), str) for x in given
        ):
            raise _ApiError(400, "Payload validation error on property secrets", "invalid_body")
        # The list replaces the Action's secrets. An entry without a value keeps
        # the value the secret already has (values can never be read back).
        replaced: dict[str, tuple[str, str]] = {}
        for entry in given:
            name, value = entry["name"], entry.get("value")
            if value is None:
                if name not in action.secrets:
                    raise _ApiError(
                        400, f"Secret {name!r} has no value and does not exist", "invalid_body"
                    )
                replaced[name] = action.secrets[name]
            elif not isinstance(value, str):
                raise _ApiError(400, "Payload validation error on property secrets", "invalid_body")
            else:
                old = action.secrets.get(name)
                replaced[name] = (value, old[1] if old and old[0] == value else stamp)
        action.secrets = replaced
    if isinstance(body.get("name"), str):
        action.name = body["name"]
    action.updated_at = stamp
    action.all_changes_deployed = False
    return web.json_response(action.public_view())


async def _deploy_action(request: web.Request) -> web.Response:
    _bearer(request, ("create:actions",))
    action = _action_or_404(request)
    action.versions.append({name: value for name, (value, _) in action.secrets.items()})
    action.all_changes_deployed = True
    number = len(action.versions)
    return web.json_response(
        {
            "id": f"{action.id}-v{number}",
            "action_id": action.id,
            "number": number,
            "deployed": True,
            "runtime": "node22",
            "status": "built",
            "secrets": [{"name": n, "updated_at": at} for n, (_, at) in action.secrets.items()],
        },
        status=202,
    )


_RULES_CONFIG_KEY = re.compile(r"^[A-Za-z0-9_\-@*+:]{1,127}$")


async def _put_rules_config(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    _bearer(request, ("update:rules_configs",))
    key = request.match_info["key"]
    if not _RULES_CONFIG_KEY.match(key):
        raise _ApiError(400, "Path validation error: 'String does not match pattern' on key")
    body = await _json_body(request, allow_empty=False)
    if not isinstance(body, dict) or set(body) != {"value"} or not isinstance(body["value"], str):
        raise _ApiError(
            400, "Payload validation error: 'Missing required property: value'", "invalid_body"
        )
    tenant.rules_configs[key] = body["value"]
    return web.json_response({"key": key, "value": body["value"]})


# -- /_fake/ control API -------------------------------------------------------------


async def _fake_create_action(request: web.Request) -> web.Response:
    data = await request.json()
    action = FakeAction(
        id=data["id"],
        name=data.get("name", data["id"]),
        secrets={n: (v, "2026-01-01T00:00:00.000Z") for n, v in data.get("secrets", {}).items()},
    )
    _tenant(request).actions[action.id] = action
    return web.json_response(_fake_action_view(action), status=201)


def _fake_action_view(action: FakeAction) -> dict[str, Any]:
    return {
        "id": action.id,
        "secrets": {n: v for n, (v, _) in action.secrets.items()},
        "all_changes_deployed": action.all_changes_deployed,
        "versions": action.versions,
    }


async def _fake_get_action(request: web.Request) -> web.Response:
    action = _tenant(request).actions.get(request.match_info["id"])
    if action is None:
        return web.json_response({"message": "no such action"}, status=404)
    return web.json_response(_fake_action_view(action))


async def _fake_rules_configs(request: web.Request) -> web.Response:
    return web.json_response(_tenant(request).rules_configs)


async def _fake_create_client(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    (client,) = seed_clients(tenant, [await request.json()])
    return web.json_response(_fake_client_view(client), status=201)


def seed_clients(tenant: Tenant, specs: list[dict[str, Any]]) -> list[FakeClient]:
    """Create clients from control-API JSON objects (see ``POST /_fake/clients``)."""
    created = []
    for data in specs:
        client = _client_from_spec(data)
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
        private_key_jwt=bool(data.get("private_key_jwt", False)),
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
    }


async def _fake_get_client(request: web.Request) -> web.Response:
    client = _tenant(request).clients.get(request.match_info["id"])
    if client is None:
        return web.json_response({"message": "no such client"}, status=404)
    return web.json_response(_fake_client_view(client))


async def _fake_calls(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    if request.method == "DELETE":
        tenant.calls.clear()
        return web.json_response([])
    return web.json_response([asdict(c) for c in tenant.calls])


async def _fake_faults(request: web.Request) -> web.Response:
    tenant = _tenant(request)
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
    return web.json_response(_tenant(request).issued_secrets)


async def _fake_settings(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    if request.method == "PUT":
        tenant.apply_settings(await request.json())
    return web.json_response(tenant.settings_view())


def make_app(tenant: Tenant) -> web.Application:
    """Build the aiohttp application serving ``tenant``."""
    app = web.Application(middlewares=[_auth0_middleware])
    app[TENANT_KEY] = tenant
    app.router.add_post("/oauth/token", _token, name="token")
    app.router.add_get("/api/v2/clients/{id}", _get_client, name="get-client")
    app.router.add_patch("/api/v2/clients/{id}", _patch_client, name="patch-client")
    app.router.add_post("/api/v2/clients/{id}/rotate-secret", _rotate_secret, name="rotate-secret")
    app.router.add_get("/api/v2/actions/actions/{id}", _get_action, name="get-action")
    app.router.add_patch("/api/v2/actions/actions/{id}", _patch_action, name="patch-action")
    app.router.add_post("/api/v2/actions/actions/{id}/deploy", _deploy_action, name="deploy-action")
    app.router.add_put("/api/v2/rules-configs/{key}", _put_rules_config, name="put-rules-config")
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
    return app
