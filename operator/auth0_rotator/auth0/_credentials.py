"""Private Key JWT on the Management API: a client's credentials and its enabled list.

``GET|POST /api/v2/clients/{id}/credentials``, ``DELETE …/{credential_id}``,
and the ``client_authentication_methods`` of ``PATCH /api/v2/clients/{id}``
(SPEC §8, ``auth0-credentials.subset.openapi.json``). Registering is not
idempotent: an answer lost after sending is :class:`OutcomeUnknown`, and the
caller lists the credentials (by the name it gave) before registering again.
Every other call here is safe to repeat: the enabled list is replaced as a
whole, and deleting what is gone already is success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auth0_rotator.auth0._answers import json_object
from auth0_rotator.auth0._errors import Auth0Unavailable, OutcomeUnknown, TargetNotFound
from auth0_rotator.auth0._paths import path_segment as _path
from auth0_rotator.auth0._targets import Request

__all__ = [
    "AuthMethods",
    "Credential",
    "delete_credential",
    "get_auth_methods",
    "list_credentials",
    "register_credential",
    "set_enabled_credentials",
]


@dataclass(frozen=True)
class Credential:
    """A public-key credential of a client, as Auth0 shows it (never the key)."""

    id: str
    name: str
    kid: str
    alg: str

    @classmethod
    def parse(cls, raw: Any) -> Credential:
        """From a Management API answer; :class:`Auth0Unavailable` if it is not one."""
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
            raise Auth0Unavailable("Auth0 answered a credential without an id")
        return cls(
            id=raw["id"],
            name=str(raw.get("name") or ""),
            kid=str(raw.get("kid") or ""),
            alg=str(raw.get("alg") or "RS256"),
        )


@dataclass(frozen=True)
class AuthMethods:
    """How a client authenticates at the token endpoint."""

    token_endpoint_auth_method: str | None
    enabled: tuple[str, ...] | None
    """Credential ids enabled for Private Key JWT; ``None``: the client does not use it."""

    @property
    def private_key_jwt(self) -> bool:
        """Whether the client authenticates with Private Key JWT."""
        return self.enabled is not None


def _credentials_path(client_id: str) -> str:
    return f"/api/v2/clients/{_path(client_id)}/credentials"


async def list_credentials(request: Request, client_id: str) -> list[Credential]:
    """Every credential of the client (needs ``read:client_credentials``)."""
    answer = await request(
        "GET",
        _credentials_path(client_id),
        endpoint="list-credentials",
        client_id=client_id,
        idempotent=True,
    )
    try:
        raw = answer.json()
    except ValueError:
        raw = None
    if not isinstance(raw, list):
        raise Auth0Unavailable("Auth0 answered the credentials list with something else")
    return [Credential.parse(item) for item in raw]


async def register_credential(
    request: Request, client_id: str, *, name: str, pem: str, alg: str
) -> Credential:
    """Register a public key (needs ``create:client_credentials``); sent once per call."""
    try:
        answer = await request(
            "POST",
            _credentials_path(client_id),
            endpoint="create-credential",
            client_id=client_id,
            idempotent=False,
            json={"credential_type": "public_key", "name": name, "pem": pem, "alg": alg},
        )
        return Credential.parse(json_object(answer))
    except OutcomeUnknown as exc:
        raise OutcomeUnknown(
            f"registering a public key on client {client_id} was sent but its answer was "
            f"lost: list the client's credentials (by name {name!r}) before registering again",
            status=exc.status,
        ) from None


async def delete_credential(request: Request, client_id: str, credential_id: str) -> bool:
    """Delete a credential (needs ``delete:client_credentials``); ``False`` if it was gone."""
    try:
        await request(
            "DELETE",
            f"{_credentials_path(client_id)}/{_path(credential_id)}",
            endpoint="delete-credential",
            client_id=client_id,
            subject=f"credential {credential_id} of client {client_id}",
            idempotent=True,
        )
    except TargetNotFound:
        return False
    return True


async def get_auth_methods(request: Request, client_id: str) -> AuthMethods:
    """How the client authenticates (needs ``read:clients`` or ``read:client_credentials``)."""
    answer = await request(
        "GET",
        f"/api/v2/clients/{_path(client_id)}",
        endpoint="get-client-auth-methods",
        client_id=client_id,
        params={
            "fields": "client_id,token_endpoint_auth_method,client_authentication_methods",
            "include_fields": "true",
        },
        idempotent=True,
    )
    body = json_object(answer)
    method = body.get("token_endpoint_auth_method")
    methods = body.get("client_authentication_methods")
    enabled: tuple[str, ...] | None = None
    if isinstance(methods, dict) and isinstance(methods.get("private_key_jwt"), dict):
        listed = methods["private_key_jwt"].get("credentials") or []
        enabled = tuple(
            str(c["id"]) for c in listed if isinstance(c, dict) and isinstance(c.get("id"), str)
        )
    return AuthMethods(method if isinstance(method, str) else None, enabled)


async def set_enabled_credentials(request: Request, client_id: str, ids: list[str]) -> None:
    """Replace the client's Private Key JWT credentials with ``ids`` (at most two)."""
    await request(
        "PATCH",
        f"/api/v2/clients/{_path(client_id)}",
        endpoint="patch-client-auth-methods",
        client_id=client_id,
        idempotent=True,
        json={
            "token_endpoint_auth_method": None,
            "client_authentication_methods": {
                "private_key_jwt": {"credentials": [{"id": i} for i in ids]}
            },
        },
    )
