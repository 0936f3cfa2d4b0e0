"""Errors of the Auth0 client, documented in one place.

Each error carries a ``reason``: the CamelCase word the operator puts in a
status condition, so the engine maps errors to conditions without string
matching. Messages say what to do and never contain a secret, a token or a
raw response body.
"""

from __future__ import annotations

__all__ = [
    "Auth0Error",
    "Auth0Unavailable",
    "ClientNotFound",
    "InsufficientScope",
    "InvalidCredentials",
    "InvalidRequest",
    "OutcomeUnknown",
    "RateLimited",
    "SecretRejected",
    "TargetNotFound",
]


class Auth0Error(Exception):
    """Base of every error raised by :mod:`auth0_rotator.auth0`."""

    reason = "Auth0Error"
    retryable = False
    """Whether trying the same operation later can succeed without a user fixing something."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class InvalidCredentials(Auth0Error):
    """The tenant's management credentials were refused by ``/oauth/token``."""

    reason = "InvalidCredentials"


class InsufficientScope(Auth0Error):
    """The management token lacks a scope the call needs."""

    reason = "InsufficientScope"

    def __init__(self, message: str, *, scopes: tuple[str, ...], status: int | None = 403) -> None:
        super().__init__(message, status=status)
        self.scopes = scopes


class ClientNotFound(Auth0Error):
    """The Auth0 application (client id) does not exist in the tenant."""

    reason = "ClientNotFound"


class TargetNotFound(Auth0Error):
    """An Auth0-side target (Action, client holding metadata) does not exist."""

    reason = "Auth0TargetNotFound"


class InvalidRequest(Auth0Error):
    """Auth0 refused the request as malformed or not allowed for this client (HTTP 400)."""

    reason = "Auth0RequestRejected"


class RateLimited(Auth0Error):
    """Auth0 kept answering 429 until the caller's deadline."""

    reason = "RateLimited"
    retryable = True

    def __init__(self, message: str, *, retry_after: float, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class Auth0Unavailable(Auth0Error):
    """Auth0 could not be reached or answered 5xx; the request had no effect."""

    reason = "Auth0Unavailable"
    retryable = True


class OutcomeUnknown(Auth0Error):
    """A non-idempotent change was sent but its answer was lost.

    The secret may or may not have changed. Never send the change again before
    reading the current state back (``GET /api/v2/clients/{id}``).
    """

    reason = "OutcomeUnknown"
    retryable = True


class SecretRejected(Auth0Error):
    """Auth0 did not accept a client secret before the verification deadline."""

    reason = "VerificationFailed"
    retryable = True
