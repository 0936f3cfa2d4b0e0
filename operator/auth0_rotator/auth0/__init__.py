"""Auth0 Management API access: the only module that speaks HTTP to Auth0.

Public face:

- :class:`Auth0Client` — one per tenant: token cache, rate budget, retries,
  typed errors; ``get_client_secret``, ``set_client_secret``,
  ``rotate_client_secret``, ``verify_client_secret``.
- :class:`TenantConnection`, :class:`RetryPolicy` — its configuration.
- The error hierarchy rooted at :class:`Auth0Error` (see ``_errors``).
"""

from auth0_rotator.auth0._client import Auth0Client, ResponseObserver, RetryPolicy, TenantConnection
from auth0_rotator.auth0._errors import (
    Auth0Error,
    Auth0Unavailable,
    ClientNotFound,
    InsufficientScope,
    InvalidCredentials,
    InvalidRequest,
    OutcomeUnknown,
    RateLimited,
    SecretRejected,
    TargetNotFound,
)
from auth0_rotator.auth0._ratelimit import RateBudget
from auth0_rotator.auth0._tokens import TokenCache

__all__ = [
    "Auth0Client",
    "Auth0Error",
    "Auth0Unavailable",
    "ClientNotFound",
    "InsufficientScope",
    "InvalidCredentials",
    "InvalidRequest",
    "OutcomeUnknown",
    "RateBudget",
    "RateLimited",
    "ResponseObserver",
    "RetryPolicy",
    "SecretRejected",
    "TargetNotFound",
    "TenantConnection",
    "TokenCache",
]
