"""What Auth0's answers mean: JSON bodies, OAuth errors and Management API errors.

Errors become the typed exceptions of ``_errors`` with messages a user can act
on (which scope to grant, which field to fix); Auth0's own words are quoted
only when they cannot carry a secret.
"""

from __future__ import annotations

import re
from typing import Any

from auth0_rotator.auth0._errors import (
    Auth0Error,
    Auth0Unavailable,
    ClientNotFound,
    InsufficientScope,
    InvalidRequest,
    TargetNotFound,
)
from auth0_rotator.auth0._transport import Answer

__all__ = ["DEFAULT_SCOPES", "json_object", "management_error", "oauth_error"]

_SCOPES_IN_MESSAGE = re.compile(r"(?:expected any of|scopes are required):\s*([\w:, ]+)")


def json_object(resp: Answer) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        raise Auth0Unavailable(
            f"Auth0 answered HTTP {resp.status_code} with a body that is not JSON"
        ) from None
    if not isinstance(data, dict):
        raise Auth0Unavailable(f"Auth0 answered HTTP {resp.status_code} with unexpected JSON")
    return data


def oauth_error(resp: Answer) -> str:
    try:
        data = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}"
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, str) and error.isidentifier() else f"HTTP {resp.status_code}"


def management_error(resp: Answer, endpoint: str, client_id: str, subject: str) -> Auth0Error:
    status = resp.status_code
    try:
        body = resp.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    code = body.get("errorCode")
    code = code if isinstance(code, str) and code.replace("_", "").isalnum() else None
    raw_message = body.get("message")
    message = raw_message if isinstance(raw_message, str) else ""
    if status == 404 and endpoint in _CLIENT_ENDPOINTS:
        return ClientNotFound(
            f"Auth0 has no client {client_id}: check spec.clientId and the tenant", status=404
        )
    if status == 404:
        return TargetNotFound(f"Auth0 has no {subject}: check spec.auth0Targets", status=404)
    if status == 403:
        scopes = _scopes(message) or DEFAULT_SCOPES.get(endpoint, ())
        return InsufficientScope(
            f"the management application lacks a scope for {endpoint}: grant "
            f"{' or '.join(scopes) or 'the required scope'} to it in the Management API's "
            "Machine to Machine settings",
            scopes=scopes,
            status=403,
        )
    said = _quotable(message)
    return InvalidRequest(
        f"Auth0 rejected {endpoint} for {subject} (HTTP {status}{', ' + code if code else ''})"
        + (f": {said}" if said else ""),
        status=status,
    )


_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-+/=.]{20,}")


def _quotable(message: str) -> str:
    """Auth0's own explanation, if it cannot carry a secret; else nothing.

    Auth0 does not echo values in its errors, but nothing guarantees it: any
    run of 20 or more token characters (every secret is longer) drops the text,
    unless it is a lowercase property path such as
    ``client_authentication_methods.private_key_jwt.credentials`` (a random
    secret is never all lowercase letters).
    """
    text = " ".join(message.split())[:200]
    if not text:
        return ""
    runs = _TOKEN_LIKE.findall(text)
    return "" if any(not _PROPERTY_PATH.fullmatch(run) for run in runs) else text


_PROPERTY_PATH = re.compile(r"[a-z_.]+")


DEFAULT_SCOPES = {
    "get-client": ("read:client_keys",),
    "patch-client": ("update:client_keys",),
    "rotate-secret": ("update:client_keys",),
    "get-action": ("read:actions",),
    "patch-action": ("update:actions",),
    "deploy-action": ("create:actions",),
    "put-rules-config": ("update:rules_configs",),
    "get-client-metadata": ("read:clients",),
    "patch-client-metadata": ("update:clients",),
    "list-credentials": ("read:client_credentials",),
    "create-credential": ("create:client_credentials",),
    "delete-credential": ("delete:client_credentials",),
    "get-client-auth-methods": ("read:client_credentials",),
    "patch-client-auth-methods": ("update:client_credentials",),
}
_CLIENT_ENDPOINTS = {
    "get-client",
    "patch-client",
    "rotate-secret",
    "list-credentials",
    "create-credential",
    "get-client-auth-methods",
    "patch-client-auth-methods",
}


def _scopes(message: str) -> tuple[str, ...]:
    match = _SCOPES_IN_MESSAGE.search(message)
    if not match:
        return ()
    found = [s.strip() for s in match.group(1).split(",")]
    return tuple(s for s in found if re.fullmatch(r"[a-z_]+:[a-z_]+", s))
