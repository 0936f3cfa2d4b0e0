"""``POST /oauth/token``: the client-credentials grant, as Auth0's Authentication API answers it.

A client authenticates with its secret (form, JSON or HTTP Basic) or, when it
uses Private Key JWT, with a ``client_assertion``: a JWT signed by the private
key of one of its enabled credentials, checked as SPEC §8 states Auth0 does
(``iss`` = ``sub`` = client id, ``aud`` = ``https://{domain}/``, at most five
minutes of life, a ``jti`` used once). Verification is PyJWT's; only the
checks Auth0 adds (lifetime, single use, the tenant's clock) are here.
"""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qsl

import jwt
from aiohttp import web

from auth0_rotator_dev.fake_auth0._credentials import ALGORITHMS, public_key_of
from auth0_rotator_dev.fake_auth0._http import CLIENT_ID, OAuthError, tenant_of
from auth0_rotator_dev.fake_auth0._state import FakeClient, FakeCredential, Tenant

__all__ = ["ASSERTION_TYPE", "token"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 300


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
    if "client_assertion" in params or "client_assertion_type" in params:
        client = _asserted_client(tenant, params)
        request[CLIENT_ID] = client.client_id
    else:
        found = tenant.clients.get(client_id)
        if (
            found is None
            or found.private_key_jwt
            or not secret
            or secret != found.client_secret
            or tenant.clock() < found.accepted_from
        ):
            raise OAuthError(401, "access_denied", "Unauthorized")
        client = found
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


def _invalid_client(description: str) -> OAuthError:
    return OAuthError(401, "invalid_client", description)


def _asserted_client(tenant: Tenant, params: dict[str, str]) -> FakeClient:
    """The client a ``client_assertion`` authenticates, or 401 ``invalid_client``."""
    if params.get("client_assertion_type") != ASSERTION_TYPE:
        raise OAuthError(400, "invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = params.get("client_assertion", "")
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _invalid_client("The client_assertion is not a valid JWT") from None
    client_id = params.get("client_id") or str(unverified.get("iss") or "")
    client = tenant.clients.get(client_id)
    if client is None or not client.private_key_jwt:
        raise _invalid_client("The client does not use Private Key JWT authentication")
    alg = header.get("alg")
    now = tenant.clock()
    usable = [
        c for c in client.enabled() if c.alg == alg and alg in ALGORITHMS and now >= c.accepted_from
    ]
    kid = header.get("kid")
    if kid is not None:
        usable = [c for c in usable if c.kid == kid] or usable
    for credential in usable:
        claims = _verified(tenant, client_id, credential, assertion)
        if claims is not None:
            jti, exp = claims
            if not tenant.use_assertion(jti, exp):
                raise _invalid_client("The client_assertion jti was used already")
            return client
    raise _invalid_client("Invalid client_assertion: no enabled credential verifies it")


def _verified(
    tenant: Tenant, client_id: str, credential: FakeCredential, assertion: str
) -> tuple[str, float] | None:
    """``(jti, exp)`` of the assertion if ``credential`` signed it and Auth0 would accept it."""
    try:
        claims: dict[str, object] = jwt.decode(
            assertion,
            public_key_of(credential.pem),
            algorithms=[credential.alg],
            audience=f"https://{tenant.domain}/",
            issuer=client_id,
            # Time is the tenant's clock (tests move it), checked below.
            options={
                "require": ["iss", "sub", "aud", "exp", "iat", "jti"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError:
        return None
    exp, iat, jti, now = claims["exp"], claims["iat"], claims["jti"], tenant.clock()
    if (
        claims["sub"] != client_id
        or not isinstance(claims["aud"], str)
        or not isinstance(exp, int | float)
        or not isinstance(iat, int | float)
        or exp - iat > MAX_ASSERTION_LIFETIME
        or exp <= now
        or iat > now + 60
        or not isinstance(jti, str)
        or not jti
    ):
        return None
    return jti, float(exp)
