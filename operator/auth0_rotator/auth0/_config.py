"""How an :class:`~auth0_rotator.auth0.Auth0Client` reaches and treats its tenant."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from auth0_rotator.auth0._breaker import CircuitBreaker
from auth0_rotator.auth0._ratelimit import RateBudget
from auth0_rotator.secretvalue import SecretValue

__all__ = ["DomainLimits", "RetryPolicy", "TenantConnection"]


@dataclass(frozen=True)
class TenantConnection:
    """How to reach one Auth0 tenant and authenticate to its Management API."""

    domain: str
    """Tenant host, optionally with a port (``acme.eu.auth0.com``); always HTTPS."""
    client_id: str
    """Client id of the machine-to-machine application used for management."""
    client_secret: SecretValue | None
    """Its client secret; ``None`` when it authenticates with :attr:`private_key`."""
    audience: str | None = None
    """Management API audience; default ``https://<domain>/api/v2/``."""
    requests_per_second: float = 2.0
    burst: int = 10
    ca_file: str | None = None
    """Extra CA bundle file to trust (tests, private proxies); verification is never disabled."""
    ca_pem: str | None = None
    """Extra PEM CA certificates to trust, in addition to the system ones."""
    timeout: float = 10.0
    """Seconds for each step of a request (connect, each read, each write)."""
    deadline: float = 30.0
    """Seconds for a whole request: connect, send and the complete answer."""
    private_key: SecretValue | None = None
    """PEM private key: the management application authenticates with Private Key JWT."""
    key_id: str | None = None
    """``kid`` put in its assertions (optional: Auth0 tries every enabled key)."""
    algorithm: str = "RS256"
    """Signing algorithm of :attr:`private_key` (RS256, RS384 or PS256)."""

    @property
    def management_audience(self) -> str:
        """The audience requested for management tokens."""
        return self.audience or f"https://{self.domain}/api/v2/"


@dataclass
class DomainLimits:
    """What every client of one Auth0 domain shares: its rate budget and its breaker."""

    budget: RateBudget
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)

    @classmethod
    def for_rate(cls, requests_per_second: float, burst: int) -> DomainLimits:
        """Fresh limits for a domain allowing ``requests_per_second`` with ``burst``."""
        return cls(RateBudget(requests_per_second, burst))


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for retryable failures: full jitter, ``base * 2**n`` capped at ``cap``."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 10.0
    deadline: float = 60.0
    """Seconds after which one call gives up, whatever attempts remain."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))  # noqa: S311
