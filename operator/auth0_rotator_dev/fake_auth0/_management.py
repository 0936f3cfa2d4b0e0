"""The Management API: clients (read, patch, rotate-secret), Actions, rules configs.

Scopes are checked per endpoint as Auth0 does; answers follow the official
OpenAPI description (``tests/auth0/test_openapi_conformance.py`` checks them).
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from auth0_rotator_dev.fake_auth0._credentials import AUTH_METHOD_FIELDS, apply_auth_methods
from auth0_rotator_dev.fake_auth0._http import (
    ApiError,
    bearer,
    client_or_404,
    json_body,
    tenant_of,
)
from auth0_rotator_dev.fake_auth0._state import (
    FakeAction,
    FakeClient,
    IssuedToken,
    Tenant,
    new_auth0_secret,
)

__all__ = [
    "deploy_action",
    "get_action",
    "get_client",
    "patch_action",
    "patch_client",
    "put_rules_config",
    "rotate_secret",
]

_READ_CLIENT = ("read:clients", "read:client_keys", "read:client_credentials")
_READ_SECRET = ("read:client_keys", "read:client_credentials")
_UPDATE_CLIENT = ("update:clients", "update:client_keys", "update:client_credentials")
_UPDATE_SECRET = ("update:client_keys",)
_UPDATE_AUTH_METHODS = ("update:client_credentials", "update:clients")
_PATCHABLE = {"client_secret", "name", "client_metadata", *AUTH_METHOD_FIELDS}


def _client_view(tenant: Tenant, client: FakeClient, with_secret: bool) -> dict[str, Any]:
    view = client.public_view(tenant.name)
    if with_secret:
        view["client_secret"] = client.client_secret
    return view


async def get_client(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    issued = bearer(request, _READ_CLIENT)
    client = client_or_404(request)
    view = _client_view(tenant, client, bool(issued.scopes.intersection(_READ_SECRET)))
    fields = [f for f in request.query.get("fields", "").split(",") if f]
    if fields:
        include = request.query.get("include_fields", "true").lower() != "false"
        view = {k: v for k, v in view.items() if (k in fields) == include}
    return web.json_response(view)


async def patch_client(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    issued = bearer(request, _UPDATE_CLIENT)
    client = client_or_404(request)
    body = await json_body(request, allow_empty=False)
    if not isinstance(body, dict):
        raise ApiError(400, "Payload validation error: 'Expected type object'", "invalid_body")
    unknown = sorted(set(body) - _PATCHABLE)
    if unknown:
        raise ApiError(
            400,
            f"Payload validation error: 'Additional properties not allowed: {','.join(unknown)}'",
            "invalid_body",
        )
    _check_patch_scopes(issued, set(body))
    secret = body.get("client_secret")
    if "client_secret" in body:
        _check_client_secret(secret)
    if "client_metadata" in body:
        metadata = body["client_metadata"]
        if not isinstance(metadata, dict):
            raise ApiError(400, "Payload validation error: 'Expected type object'", "invalid_body")
        _check_client_metadata(metadata)
    if AUTH_METHOD_FIELDS.intersection(body):
        apply_auth_methods(tenant, client, body)  # validates before it changes anything
    if isinstance(secret, str) and secret != client.client_secret:
        tenant.change_secret(client, secret)
    if isinstance(body.get("name"), str):
        client.name = body["name"]
    if "client_metadata" in body:
        metadata = body["client_metadata"]
        client.client_metadata = {str(k): str(v) for k, v in metadata.items() if v is not None}
    with_secret = bool(issued.scopes.intersection(_READ_SECRET + _UPDATE_SECRET))
    return web.json_response(_client_view(tenant, client, with_secret))


def _insufficient(scope: str) -> ApiError:
    return ApiError(
        403,
        "Some fields cannot be updated with the permissions granted by the bearer token "
        f"scopes. The following scopes are required: {scope}",
        "insufficient_scope",
    )


def _check_patch_scopes(issued: IssuedToken, fields: set[str]) -> None:
    """Keys: update:client_keys; auth methods: update:client_credentials; else update:clients."""
    scopes = issued.scopes
    if fields - {"client_secret"} - AUTH_METHOD_FIELDS and "update:clients" not in scopes:
        raise _insufficient("update:clients")
    if fields & AUTH_METHOD_FIELDS and not scopes.intersection(_UPDATE_AUTH_METHODS):
        raise _insufficient("update:client_credentials")
    if "client_secret" in fields and not scopes.intersection(_UPDATE_SECRET):
        raise _insufficient("update:client_keys")


def _check_client_secret(secret: Any) -> None:
    if not isinstance(secret, str):
        raise ApiError(
            400,
            "Payload validation error: 'Expected type string' on property client_secret",
            "invalid_body",
        )
    if not secret:
        raise ApiError(
            400,
            "Payload validation error: 'String is too short (0 chars), minimum 1' on "
            "property client_secret (The secret used to sign tokens for the client).",
            "invalid_body",
        )


_METADATA_KEY = re.compile(r"^[A-Za-z0-9:,\-+=_*?\"/\\()<>@\t ]{1,255}$")


def _check_client_metadata(metadata: dict[str, Any]) -> None:
    """Auth0's ClientMetadata limits: at most 10 keys, names and string values of <= 255."""
    if len(metadata) > 10:
        raise ApiError(
            400,
            "Payload validation error: 'Too many properties defined "
            f"({len(metadata)}), maximum 10' on property client_metadata",
            "invalid_body",
        )
    for key, value in metadata.items():
        if not _METADATA_KEY.match(key):
            raise ApiError(
                400,
                f"Payload validation error: invalid client_metadata key {key!r}",
                "invalid_body",
            )
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise ApiError(
                400,
                "Payload validation error: 'String is too long, maximum 255' on property "
                f"client_metadata.{key}",
                "invalid_body",
            )


async def rotate_secret(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    bearer(request, _UPDATE_SECRET)
    client = client_or_404(request)
    body = await json_body(request, allow_empty=True)
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, "Payload validation error: 'Expected type object'", "invalid_body")
    if client.private_key_jwt:
        raise ApiError(
            400,
            "The client secret cannot be rotated for clients configured with the Private Key "
            "JWT authentication method.",
            "invalid_body",
        )
    tenant.change_secret(client, new_auth0_secret())
    return web.json_response(_client_view(tenant, client, with_secret=True))


def _action_or_404(request: web.Request) -> FakeAction:
    action = tenant_of(request).actions.get(request.match_info["id"])
    if action is None:
        raise ApiError(404, "The action does not exist.", "not_found")
    return action


async def get_action(request: web.Request) -> web.Response:
    bearer(request, ("read:actions",))
    return web.json_response(_action_or_404(request).public_view())


_ACTION_PATCHABLE = {"name", "supported_triggers", "code", "dependencies", "runtime", "secrets"}


async def patch_action(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    bearer(request, ("update:actions",))
    action = _action_or_404(request)
    body = await json_body(request, allow_empty=False)
    if not isinstance(body, dict):
        raise ApiError(400, "Payload validation error: 'Expected type object'", "invalid_body")
    unknown = sorted(set(body) - _ACTION_PATCHABLE)
    if unknown:
        raise ApiError(
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
            raise ApiError(400, "Payload validation error on property secrets", "invalid_body")
        # The list replaces the Action's secrets. An entry without a value keeps
        # the value the secret already has (values can never be read back).
        replaced: dict[str, tuple[str, str]] = {}
        for entry in given:
            name, value = entry["name"], entry.get("value")
            if value is None:
                if name not in action.secrets:
                    raise ApiError(
                        400, f"Secret {name!r} has no value and does not exist", "invalid_body"
                    )
                replaced[name] = action.secrets[name]
            elif not isinstance(value, str):
                raise ApiError(400, "Payload validation error on property secrets", "invalid_body")
            else:
                old = action.secrets.get(name)
                replaced[name] = (value, old[1] if old and old[0] == value else stamp)
        action.secrets = replaced
    if isinstance(body.get("name"), str):
        action.name = body["name"]
    action.updated_at = stamp
    action.all_changes_deployed = False
    return web.json_response(action.public_view())


async def deploy_action(request: web.Request) -> web.Response:
    bearer(request, ("create:actions",))
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


async def put_rules_config(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    bearer(request, ("update:rules_configs",))
    key = request.match_info["key"]
    if not _RULES_CONFIG_KEY.match(key):
        raise ApiError(400, "Path validation error: 'String does not match pattern' on key")
    body = await json_body(request, allow_empty=False)
    if not isinstance(body, dict) or set(body) != {"value"} or not isinstance(body["value"], str):
        raise ApiError(
            400, "Payload validation error: 'Missing required property: value'", "invalid_body"
        )
    tenant.rules_configs[key] = body["value"]
    return web.json_response({"key": key, "value": body["value"]})
