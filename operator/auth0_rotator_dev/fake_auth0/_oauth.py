"""``POST /oauth/token``: the client-credentials grant, as Auth0's Authentication API answers it."""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qsl

from aiohttp import web

from auth0_rotator_dev.fake_auth0._http import CLIENT_ID, OAuthError, tenant_of

__all__ = ["token"]


async def _read_params(request: web.Request) -> dict[str, str]:
    raw = await request.read()
    ctype = request.content_type
    if ctype == "application/json":
        try:
            data = json.loads(raw or b"{}")
        except ValueError as exc:
            raise OAuthError(400, "invalid_request", "Invalid JSON body") from exc
        if not isinstance(data, dict):
            raise OAuthError(400, "invalid_request", "Body must be a JSON object")
        return {k: v for k, v in data.items() if isinstance(v, str)}
    if ctype in ("application/x-www-form-urlencoded", ""):
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    raise OAuthError(400, "invalid_request", f"Unsupported content type {ctype}")


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError(401, "access_denied", "Unauthorized") from exc
    user, _, password = decoded.partition(":")
    return user, password


async def token(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    params = await _read_params(request)
    basic = _basic_credentials(request)
    client_id = basic[0] if basic else params.get("client_id", "")
    secret = basic[1] if basic else params.get("client_secret", "")
    if client_id:
        request[CLIENT_ID] = client_id
    grant_type = params.get("grant_type")
    if not grant_type:
        raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
    if grant_type != "client_credentials":
        raise OAuthError(403, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
    client = tenant.clients.get(client_id)
    now = tenant.clock()
    if (
        client is None
        or client.private_key_jwt
        or not secret
        or secret != client.client_secret
        or now < client.accepted_from
    ):
        raise OAuthError(401, "access_denied", "Unauthorized")
    if "client_credentials" not in client.grant_types:
        raise OAuthError(
            403,
            "unauthorized_client",
            "Grant type 'client_credentials' not allowed for the client.",
        )
    audience = params.get("audience", "")
    if not audience:
        raise OAuthError(
            403,
            "access_denied",
            "No audience parameter was provided, and no default audience has been configured",
        )
    if audience not in tenant.known_audiences():
        raise OAuthError(403, "access_denied", f"Service not enabled within domain: {audience}")
    if audience not in client.grants:
        raise OAuthError(
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
