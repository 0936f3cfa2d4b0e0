"""The fake tenant's state: clients, issued tokens, rate bucket, faults, call log.

Plain data and decisions, no HTTP: :mod:`._app` turns requests into calls on
:class:`Tenant`. Time comes from an injectable clock so tests can move it.
"""

from __future__ import annotations

import math
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "CallRecord",
    "FakeAction",
    "FakeClient",
    "FakeCredential",
    "Fault",
    "IssuedToken",
    "Settings",
    "Tenant",
    "TokenBucket",
    "new_auth0_secret",
]

Clock = Callable[[], float]

_SECRET_ALPHABET = string.ascii_letters + string.digits + "_-"


def new_auth0_secret() -> str:
    """A secret shaped like the ones Auth0's rotate-secret returns (64 URL-safe chars)."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(64))


@dataclass
class FakeClient:
    """One Auth0 application of the fake tenant."""

    client_id: str
    client_secret: str
    name: str = ""
    app_type: str = "non_interactive"
    grant_types: list[str] = field(default_factory=lambda: ["client_credentials"])
    grants: dict[str, list[str]] = field(default_factory=dict)
    """Client grants: audience -> scopes this client may request for it."""
    token_endpoint_auth_method: str | None = "client_secret_post"
    """``None`` while the client authenticates with Private Key JWT."""
    credentials: dict[str, FakeCredential] = field(default_factory=dict)
    """Registered public-key credentials, by id (enabled or not)."""
    enabled_credentials: list[str] | None = None
    """``client_authentication_methods.private_key_jwt.credentials`` ids; ``None``: not set."""
    client_metadata: dict[str, str] = field(default_factory=dict)
    accepted_from: float = 0.0
    """Clock time from which ``/oauth/token`` accepts the current secret (propagation)."""
    secret_changes: int = 0
    """How many times the secret changed (PATCH or rotate-secret)."""

    @property
    def private_key_jwt(self) -> bool:
        """Whether the client authenticates with Private Key JWT (its secret does not)."""
        return self.enabled_credentials is not None

    def enabled(self) -> list[FakeCredential]:
        """The credentials enabled for Private Key JWT, in list order."""
        ids = self.enabled_credentials or ()
        return [self.credentials[i] for i in ids if i in self.credentials]

    def public_view(self, tenant_name: str) -> dict[str, Any]:
        """The client object as the Management API shows it (without the secret)."""
        view: dict[str, Any] = {
            "client_id": self.client_id,
            "tenant": tenant_name,
            "name": self.name,
            "description": "",
            "global": False,
            "app_type": self.app_type,
            "is_first_party": True,
            "oidc_conformant": True,
            "callbacks": [],
            "allowed_origins": [],
            "web_origins": [],
            "allowed_logout_urls": [],
            "grant_types": list(self.grant_types),
            "jwt_configuration": {"alg": "RS256", "lifetime_in_seconds": 36000},
            "sso_disabled": False,
            "cross_origin_authentication": False,
            "custom_login_page_on": True,
            "client_metadata": dict(self.client_metadata),
        }
        if self.enabled_credentials is not None:
            ids = [{"id": i} for i in self.enabled_credentials]
            view["client_authentication_methods"] = {"private_key_jwt": {"credentials": ids}}
        if self.token_endpoint_auth_method is not None:
            view["token_endpoint_auth_method"] = self.token_endpoint_auth_method
        return view


@dataclass
class FakeCredential:
    """A public key registered on a client (``credential_type: public_key``)."""

    id: str
    name: str
    kid: str
    alg: str
    pem: str
    """The public key as registered (never shown by the API)."""
    created_at: str
    expires_at: str | None = None
    accepted_from: float = 0.0
    """Clock time from which ``/oauth/token`` accepts assertions it signed (propagation)."""

    def public_view(self) -> dict[str, Any]:
        """The credential as the Management API shows it (never the key)."""
        view: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "kid": self.kid,
            "alg": self.alg,
            "credential_type": "public_key",
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }
        if self.expires_at is not None:
            view["expires_at"] = self.expires_at
        return view


@dataclass
class FakeAction:
    """One Action: its secrets (values never shown by the API) and deployed versions."""

    id: str
    name: str
    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Secret name -> (value, updated_at)."""
    updated_at: str = "2026-01-01T00:00:00.000Z"
    all_changes_deployed: bool = True
    versions: list[dict[str, str]] = field(default_factory=list)
    """Deployed versions, newest last: the secret values each one runs with."""

    def public_view(self) -> dict[str, Any]:
        """The Action as ``GET /api/v2/actions/actions/{id}`` shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "supported_triggers": [{"id": "post-login", "version": "v3"}],
            "all_changes_deployed": self.all_changes_deployed,
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": self.updated_at,
            "code": "exports.onExecutePostLogin = async (event, api) => {};",
            "dependencies": [],
            "runtime": "node22",
            "secrets": [{"name": n, "updated_at": at} for n, (_, at) in self.secrets.items()],
            "status": "built",
            "deploy": False,
        }


@dataclass(frozen=True)
class IssuedToken:
    """An access token the fake issued."""

    client_id: str
    audience: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class Fault:
    """An injected misbehaviour of one endpoint (``*`` for all)."""

    endpoint: str
    status: int | None = None
    """Answer with this HTTP status instead of handling the request."""
    latency: float = 0.0
    """Seconds to wait before handling."""
    reset_after_commit: bool = False
    """Handle the request (the change is committed), then reset the connection."""
    count: int | None = 1
    """Calls left to affect; ``None`` means until cleared."""

    def matches(self, endpoint: str) -> bool:
        """Whether this fault applies to ``endpoint`` and still has calls left."""
        return (self.endpoint in (endpoint, "*")) and (self.count is None or self.count > 0)

    def consume(self) -> None:
        """Count one affected call."""
        if self.count is not None:
            self.count -= 1


@dataclass
class CallRecord:
    """One entry of the call log (never a secret or token)."""

    method: str
    path: str
    endpoint: str
    status: int
    time: float
    client_id: str | None


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` stored."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        return now

    def take(self) -> tuple[bool, int, int]:
        """Try to take one token; return ``(allowed, remaining, reset_unix_seconds)``.

        ``reset`` is when the next token is available if none is left, else
        when the bucket is full again (the meaning of ``x-ratelimit-reset``).
        """
        now = self._refill()
        allowed = self._tokens >= 1.0
        if allowed:
            self._tokens -= 1.0
        remaining = math.floor(self._tokens)
        if remaining < 1:
            wait = (1.0 - self._tokens) / self.rate
        else:
            wait = (self.burst - self._tokens) / self.rate
        return allowed, remaining, math.ceil(now + wait)


@dataclass
class Settings:
    """Behaviour knobs, changed with ``PUT /_fake/settings``."""

    requests_per_second: float = 2.0
    burst: int = 10
    propagation_delay: float = 0.0
    """Seconds before a changed secret is accepted by ``/oauth/token``."""
    token_lifetime: int = 86400
    """``expires_in`` of issued access tokens."""


class Tenant:
    """Everything the fake tenant knows."""

    def __init__(self, domain: str, clock: Clock = time.time) -> None:
        self.domain = domain
        self.clock = clock
        self.settings = Settings()
        self.clients: dict[str, FakeClient] = {}
        self.actions: dict[str, FakeAction] = {}
        self.rules_configs: dict[str, str] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.faults: list[Fault] = []
        self.calls: list[CallRecord] = []
        self.issued_secrets: list[str] = []
        """Every client secret this tenant ever held (for leak scans in tests)."""
        self.used_assertions: dict[str, float] = {}
        """``jti`` of accepted client assertions -> when they expire (each is single use)."""
        self.bucket = TokenBucket(self.settings.requests_per_second, self.settings.burst, clock)

    @property
    def name(self) -> str:
        """Tenant name, as Auth0 reports it in client objects."""
        return self.domain.split(".")[0].split(":")[0]

    @property
    def management_audience(self) -> str:
        """Audience of the Management API."""
        return f"https://{self.domain}/api/v2/"

    def known_audiences(self) -> set[str]:
        """Audiences of the APIs that exist in this tenant."""
        audiences = {self.management_audience}
        for client in self.clients.values():
            audiences.update(client.grants)
        return audiences

    def apply_settings(self, changes: dict[str, Any]) -> None:
        """Update settings; a rate change starts a fresh, full bucket."""
        rate = changes.get("rate_limit") or {}
        if "requests_per_second" in rate:
            self.settings.requests_per_second = float(rate["requests_per_second"])
        if "burst" in rate:
            self.settings.burst = int(rate["burst"])
        if "propagation_delay" in changes:
            self.settings.propagation_delay = float(changes["propagation_delay"])
        if "token_lifetime" in changes:
            self.settings.token_lifetime = int(changes["token_lifetime"])
        self.bucket = TokenBucket(
            self.settings.requests_per_second, self.settings.burst, self.clock
        )

    def settings_view(self) -> dict[str, Any]:
        """Settings as JSON."""
        data = asdict(self.settings)
        return {
            "rate_limit": {
                "requests_per_second": data.pop("requests_per_second"),
                "burst": data.pop("burst"),
            },
            **data,
            "management_audience": self.management_audience,
        }

    def change_secret(self, client: FakeClient, secret: str) -> None:
        """Replace the secret: the old one dies now, the new one works after propagation."""
        client.client_secret = secret
        self.issued_secrets.append(secret)
        client.accepted_from = self.clock() + self.settings.propagation_delay
        client.secret_changes += 1

    def issue_token(self, client: FakeClient, audience: str) -> tuple[str, IssuedToken]:
        """Issue an access token for ``client`` and ``audience`` (grant already checked)."""
        token = secrets.token_urlsafe(32)
        issued = IssuedToken(
            client_id=client.client_id,
            audience=audience,
            scopes=frozenset(client.grants.get(audience, [])),
            expires_at=self.clock() + self.settings.token_lifetime,
        )
        self.tokens[token] = issued
        return token, issued

    def enable_credentials(self, client: FakeClient, ids: list[str]) -> None:
        """Set the enabled list; newly enabled keys work after the propagation delay."""
        before = set(client.enabled_credentials or ())
        for credential_id in ids:
            if credential_id not in before:
                delay = self.settings.propagation_delay
                client.credentials[credential_id].accepted_from = self.clock() + delay
        client.enabled_credentials = list(ids)
        client.token_endpoint_auth_method = None

    def use_assertion(self, jti: str, expires_at: float) -> bool:
        """Record ``jti`` as used until ``expires_at``; ``False`` if it was used already."""
        now = self.clock()
        for used, until in list(self.used_assertions.items()):
            if until < now:
                del self.used_assertions[used]
        if jti in self.used_assertions:
            return False
        self.used_assertions[jti] = expires_at
        return True

    def take_fault(self, endpoint: str) -> Fault | None:
        """The first active fault for ``endpoint``, counted as used."""
        for fault in self.faults:
            if fault.matches(endpoint):
                fault.consume()
                return fault
        return None
