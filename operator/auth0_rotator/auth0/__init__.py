"""Auth0 Management API access: the only module that speaks HTTP to Auth0.

Public face:

- :class:`Auth0Client` — one per tenant configuration: token cache, retries,
  deadlines, typed errors; ``get_client_secret``, ``set_client_secret``,
  ``rotate_client_secret``, ``verify_client_secret``, ``check_credentials``;
  for Private Key JWT ``list_credentials``, ``register_credential``,
  ``delete_credential``, ``get_auth_methods``, ``set_enabled_credentials``,
  ``verify_private_key`` (:class:`Credential`, :class:`AuthMethods`).
- :class:`DomainLimits` — what all clients of one Auth0 domain share: the
  :class:`RateBudget` and the :class:`CircuitBreaker`.
- :class:`TenantConnection`, :class:`RetryPolicy` — its configuration.
- The error hierarchy rooted at :class:`Auth0Error` (see ``_errors``), and
  :class:`InvalidCABundle` for a CA that cannot be loaded.
"""

from auth0_rotator.auth0._breaker import CircuitBreaker
from auth0_rotator.auth0._client import (
    Auth0Client,
    DomainLimits,
    ResponseObserver,
    RetryPolicy,
    TenantConnection,
)
from auth0_rotator.auth0._credentials import AuthMethods, Credential
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
from auth0_rotator.auth0._tls import InvalidCABundle
from auth0_rotator.auth0._tokens import TokenCache

__all__ = [
    "Auth0Client",
    "Auth0Error",
    "Auth0Unavailable",
    "AuthMethods",
    "CircuitBreaker",
    "ClientNotFound",
    "Credential",
    "DomainLimits",
    "InsufficientScope",
    "InvalidCABundle",
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
