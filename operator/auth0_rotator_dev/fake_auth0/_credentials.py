"""Client credentials (Private Key JWT public keys) and the authentication-method fields.

``GET|POST /api/v2/clients/{client_id}/credentials`` and
``GET|PATCH|DELETE …/credentials/{credential_id}``, with the scopes, codes and
bodies of the official OpenAPI description
(``tests/data/auth0-credentials.subset.openapi.json``), plus what ``PATCH
/api/v2/clients/{id}`` does with ``token_endpoint_auth_method`` and
``client_authentication_methods``. As SPEC §8 states Auth0's behaviour: at
most two credentials enabled, an enabled credential cannot be deleted, a
deleted one is a 404, RSA keys of 2048-4096 bits only.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auth0_rotator_dev.fake_auth0._http import (
    ApiError,
    bearer,
    client_or_404,
    json_body,
    tenant_of,
)
from auth0_rotator_dev.fake_auth0._state import FakeClient, FakeCredential, Tenant

__all__ = [
    "ALGORITHMS",
    "AUTH_METHOD_FIELDS",
    "MAX_ENABLED",
    "apply_auth_methods",
    "create_credential",
    "delete_credential",
    "get_credential",
    "list_credentials",
    "new_credential",
    "patch_credential",
    "public_key_of",
]

ALGORITHMS = ("RS256", "RS384", "PS256")
MAX_ENABLED = 2
AUTH_METHOD_FIELDS = frozenset({"token_endpoint_auth_method", "client_authentication_methods"})
_TOKEN_ENDPOINT_METHODS = ("none", "client_secret_post", "client_secret_basic")
_CREDENTIAL_FIELDS = {
    "credential_type",
    "name",
    "subject_dn",
    "pem",
    "alg",
    "parse_expiry_from_cert",
    "expires_at",
    "kid",
}
_KID = re.compile(r"^[0-9a-zA-Z\-_]{10,64}$")
_ID_ALPHABET = string.ascii_letters + string.digits


def _invalid(message: str) -> ApiError:
    return ApiError(400, f"Payload validation error: {message}", "invalid_body")


def _stamp(tenant: Tenant) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(tenant.clock()))


def public_key_of(pem: str) -> rsa.RSAPublicKey:
    """The RSA public key in ``pem`` (SPKI, PKCS#1 or an X.509 certificate), 2048-4096 bits."""
    data = pem.encode()
    key: Any
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = x509.load_pem_x509_certificate(data).public_key()
        except ValueError:
            raise ApiError(
                400, "The pem is not a valid PEM public key or certificate", "invalid_body"
            ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ApiError(400, "Only RSA public keys are supported", "invalid_body")
    if not 2048 <= key.key_size <= 4096:
        raise ApiError(
            400,
            f"The key is {key.key_size} bits: RSA keys must be between 2048 and 4096 bits",
            "invalid_body",
        )
    return key


def new_credential(
    tenant: Tenant, pem: str, *, alg: str = "RS256", name: str = "", kid: str | None = None
) -> FakeCredential:
    """A credential for ``pem`` (checked), not attached to any client yet."""
    public_key_of(pem)
    return FakeCredential(
        id="cred_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22)),
        name=name,
        kid=kid or secrets.token_urlsafe(32),
        alg=alg,
        pem=pem,
        created_at=_stamp(tenant),
    )


def _credential_or_404(client: FakeClient, request: web.Request) -> FakeCredential:
    credential = client.credentials.get(request.match_info["credential_id"])
    if credential is None:
        raise ApiError(404, "The credential does not exist", "inexistent_credential")
    return credential


async def list_credentials(request: web.Request) -> web.Response:
    bearer(request, ("read:client_credentials",))
    client = client_or_404(request)
    return web.json_response([c.public_view() for c in client.credentials.values()])


async def get_credential(request: web.Request) -> web.Response:
    bearer(request, ("read:client_credentials",))
    client = client_or_404(request)
    return web.json_response(_credential_or_404(client, request).public_view())


async def create_credential(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    bearer(request, ("create:client_credentials",))
    client = client_or_404(request)
    body = await json_body(request, allow_empty=False)
    if not isinstance(body, dict):
        raise _invalid("'Expected type object'")
    unknown = sorted(set(body) - _CREDENTIAL_FIELDS)
    if unknown:
        raise _invalid(f"'Additional properties not allowed: {','.join(unknown)}'")
    kind = body.get("credential_type")
    if kind is None:
        raise _invalid("'Missing required property: credential_type'")
    if kind != "public_key":
        raise ApiError(
            400, f"credential_type {kind!r} is not supported by this fake tenant", "invalid_body"
        )
    pem, alg = body.get("pem"), body.get("alg", "RS256")
    if not isinstance(pem, str) or not pem:
        raise _invalid("'Missing required property: pem'")
    if alg not in ALGORITHMS:
        raise _invalid(f"'No enum match for: {alg}' on property alg")
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 128:
        raise _invalid("'String is too long, maximum 128' on property name")
    kid = body.get("kid")
    if kid is not None and (not isinstance(kid, str) or not _KID.match(kid)):
        raise _invalid("'String does not match pattern' on property kid")
    if kid is not None and any(c.kid == kid for c in client.credentials.values()):
        raise ApiError(409, "A credential with this kid already exists", "conflict")
    credential = new_credential(tenant, pem, alg=alg, name=name, kid=kid)
    expires = body.get("expires_at")
    if isinstance(expires, str):
        credential.expires_at = expires
    client.credentials[credential.id] = credential
    return web.json_response(credential.public_view(), status=201)


async def patch_credential(request: web.Request) -> web.Response:
    bearer(request, ("update:client_credentials",))
    client = client_or_404(request)
    credential = _credential_or_404(client, request)
    body = await json_body(request, allow_empty=False)
    if not isinstance(body, dict) or not body:
        raise _invalid("'Too few properties defined (0), minimum 1'")
    unknown = sorted(set(body) - {"expires_at"})
    if unknown:
        raise _invalid(f"'Additional properties not allowed: {','.join(unknown)}'")
    expires = body["expires_at"]
    if expires is not None and not isinstance(expires, str):
        raise _invalid("'Expected type string' on property expires_at")
    credential.expires_at = expires
    return web.json_response(credential.public_view(), status=201)


async def delete_credential(request: web.Request) -> web.Response:
    bearer(request, ("delete:client_credentials",))
    client = client_or_404(request)
    credential = _credential_or_404(client, request)
    if credential.id in (client.enabled_credentials or ()):
        raise ApiError(
            400,
            "The credential is enabled for the client's authentication methods: remove it "
            "from client_authentication_methods before deleting it",
            "invalid_body",
        )
    del client.credentials[credential.id]
    return web.Response(status=204)


def apply_auth_methods(tenant: Tenant, client: FakeClient, body: dict[str, Any]) -> None:
    """Apply ``token_endpoint_auth_method`` / ``client_authentication_methods`` of a PATCH."""
    method = body.get("token_endpoint_auth_method", client.token_endpoint_auth_method)
    if method is not None and method not in _TOKEN_ENDPOINT_METHODS:
        raise _invalid(f"'No enum match for: {method}' on property token_endpoint_auth_method")
    if "client_authentication_methods" in body:
        methods = body["client_authentication_methods"]
        ids = None if methods is None else _enabled_ids(client, methods)
    else:
        ids = client.enabled_credentials
    if ids is not None and method is not None:
        raise ApiError(
            400,
            "token_endpoint_auth_method must be null when client_authentication_methods is set",
            "invalid_body",
        )
    if ids is None and method is None:
        raise ApiError(
            400,
            "A client needs token_endpoint_auth_method or client_authentication_methods",
            "invalid_body",
        )
    if ids is None:
        client.enabled_credentials = None
        client.token_endpoint_auth_method = method
    else:
        tenant.enable_credentials(client, ids)


def _enabled_ids(client: FakeClient, methods: Any) -> list[str]:
    where = "on property client_authentication_methods"
    if not isinstance(methods, dict) or len(methods) != 1:
        raise _invalid(f"'Expected exactly one authentication method' {where}")
    ((name, value),) = methods.items()
    if name != "private_key_jwt":
        raise ApiError(
            400, f"authentication method {name!r} is not supported by this fake", "invalid_body"
        )
    if not isinstance(value, dict) or set(value) != {"credentials"}:
        raise _invalid(f"'Missing required property: credentials' {where}.private_key_jwt")
    given = value["credentials"]
    where += ".private_key_jwt.credentials"
    if not isinstance(given, list) or not all(
        isinstance(c, dict) and set(c) == {"id"} and isinstance(c["id"], str) for c in given
    ):
        raise _invalid(f"'Expected an array of {{id}}' {where}")
    if len(given) > MAX_ENABLED:
        raise _invalid(f"'Array is too long ({len(given)}), maximum {MAX_ENABLED}' {where}")
    ids = [c["id"] for c in given]
    if len(set(ids)) != len(ids):
        raise _invalid(f"'Array items are not unique' {where}")
    for credential_id in ids:
        if credential_id not in client.credentials:
            raise ApiError(400, f"The credential {credential_id} does not exist", "invalid_body")
    return ids
