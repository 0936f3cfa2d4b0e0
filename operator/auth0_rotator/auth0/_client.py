"""The Auth0 Management API client the operator uses (async, httpx).

One :class:`Auth0Client` per tenant configuration owns one ``httpx.AsyncClient``
(connection reuse, TLS verification always on) and one :class:`TokenCache`;
every client of one Auth0 domain shares that domain's :class:`DomainLimits`
(its rate budget and circuit breaker), however many tenant objects name it.
Every request has a total deadline and a bounded answer (``_transport``).
Idempotent calls (GET, PATCH with a given value, token requests) are retried
with backoff; ``rotate-secret`` is sent once and a lost answer becomes
:class:`OutcomeUnknown`. Errors are typed and their messages never contain a
secret, a token or a raw response body.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from auth0_rotator.auth0 import _credentials, _targets
from auth0_rotator.auth0._answers import json_object, management_error
from auth0_rotator.auth0._config import DomainLimits, RetryPolicy, TenantConnection
from auth0_rotator.auth0._credentials import AuthMethods, Credential
from auth0_rotator.auth0._errors import (
    Auth0Error,
    Auth0Unavailable,
    InsufficientScope,
    OutcomeUnknown,
    RateLimited,
)
from auth0_rotator.auth0._paths import path_segment as _path
from auth0_rotator.auth0._ratelimit import RateBudget
from auth0_rotator.auth0._tls import tls_context
from auth0_rotator.auth0._token_endpoint import Retry as _Retry
from auth0_rotator.auth0._token_endpoint import TokenEndpoint
from auth0_rotator.auth0._tokens import TokenCache
from auth0_rotator.auth0._transport import Answer, NoAnswer, Refused, exchange
from auth0_rotator.secretvalue import SecretValue

__all__ = ["Auth0Client", "DomainLimits", "ResponseObserver", "RetryPolicy", "TenantConnection"]

log = logging.getLogger(__name__)
T = TypeVar("T")

ResponseObserver = Callable[[str, int], None]
"""Called with (endpoint, HTTP status or 0 for no answer) after every Auth0 request."""


class Auth0Client(TokenEndpoint):
    """Talks to one tenant's Management API on behalf of every resource using it."""

    def __init__(
        self,
        connection: TenantConnection,
        *,
        limits: DomainLimits | None = None,
        retry: RetryPolicy | None = None,
        observer: ResponseObserver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.connection = connection
        self.retry = retry or RetryPolicy()
        self._observer = observer
        self.limits = limits or DomainLimits.for_rate(
            connection.requests_per_second, connection.burst
        )
        self._http = httpx.AsyncClient(
            base_url=f"https://{connection.domain}",
            # Raises InvalidCABundle for a CA that cannot be loaded.
            verify=tls_context(connection.ca_file, connection.ca_pem),
            timeout=httpx.Timeout(min(connection.timeout, connection.deadline)),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            headers={"User-Agent": "auth0-rotator"},
            transport=transport,
            follow_redirects=False,
        )
        self.tokens = TokenCache(self._fetch_management_token)

    @property
    def budget(self) -> RateBudget:
        """The rate budget of this client's domain (shared)."""
        return self.limits.budget

    @property
    def closed(self) -> bool:
        """Whether the connection pool is closed."""
        return self._http.is_closed

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Auth0Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def check_credentials(self) -> float | None:
        """Obtain a management token (cached); return when it expires (monotonic clock)."""
        await self.tokens.get()
        return self.tokens.expires_at

    # -- public operations ------------------------------------------------------------

    async def get_client_secret(self, client_id: str) -> SecretValue:
        """Read the client's current secret (needs ``read:client_keys``)."""
        resp = await self._management(
            "GET",
            f"/api/v2/clients/{_path(client_id)}",
            endpoint="get-client",
            client_id=client_id,
            params={"fields": "client_id,client_secret", "include_fields": "true"},
            idempotent=True,
        )
        secret = json_object(resp).get("client_secret")
        if not isinstance(secret, str) or not secret:
            raise InsufficientScope(
                f"Auth0 returned client {client_id} without its secret: grant the management "
                "application the read:client_keys scope",
                scopes=("read:client_keys",),
            )
        return SecretValue(secret)

    async def get_client(self, client_id: str) -> dict[str, Any]:
        """Read the client's settings without its secret (grant types, auth method)."""
        resp = await self._management(
            "GET",
            f"/api/v2/clients/{_path(client_id)}",
            endpoint="get-client",
            client_id=client_id,
            params={"fields": "client_secret", "include_fields": "false"},
            idempotent=True,
        )
        return json_object(resp)

    async def set_client_secret(self, client_id: str, secret: SecretValue) -> None:
        """Set the client's secret to ``secret`` (idempotent; needs ``update:client_keys``)."""
        await self._management(
            "PATCH",
            f"/api/v2/clients/{_path(client_id)}",
            endpoint="patch-client",
            client_id=client_id,
            json={"client_secret": secret.reveal()},
            idempotent=True,
        )

    async def rotate_client_secret(self, client_id: str) -> SecretValue:
        """Ask Auth0 to generate a new secret; sent at most once per call.

        Raises :class:`OutcomeUnknown` when the request may have been processed
        but its answer was lost: read the secret back before rotating again.
        """
        resp = await self._management(
            "POST",
            f"/api/v2/clients/{_path(client_id)}/rotate-secret",
            endpoint="rotate-secret",
            client_id=client_id,
            idempotent=False,
        )
        try:
            secret = json_object(resp).get("client_secret")
        except Auth0Error as exc:
            raise OutcomeUnknown(
                f"rotate-secret for client {client_id} answered without a readable secret; "
                "read it back before rotating again"
            ) from exc
        if not isinstance(secret, str) or not secret:
            raise OutcomeUnknown(
                f"rotate-secret for client {client_id} answered without a secret; "
                "read it back before rotating again"
            )
        return SecretValue(secret)

    async def set_action_secret(self, action_id: str, name: str, value: SecretValue) -> None:
        """Set secret ``name`` of an Action, keep its other secrets, then deploy it."""
        await _targets.set_action_secret(self._management, action_id, name, value)

    async def set_rules_config(self, key: str, value: SecretValue) -> None:
        """Set the rules configuration value ``key`` (needs ``update:rules_configs``)."""
        await _targets.set_rules_config(self._management, key, value)

    async def set_client_metadata(self, client_id: str, key: str, value: SecretValue) -> None:
        """Set ``client_metadata[key]`` of an application, keeping its other keys."""
        await _targets.set_client_metadata(self._management, client_id, key, value)

    # -- Private Key JWT (SPEC §8) ----------------------------------------------------

    async def list_credentials(self, client_id: str) -> list[Credential]:
        """The client's public-key credentials (needs ``read:client_credentials``)."""
        return await _credentials.list_credentials(self._management, client_id)

    async def register_credential(
        self, client_id: str, *, name: str, pem: str, alg: str
    ) -> Credential:
        """Register a public key; sent once. :class:`OutcomeUnknown`: list before retrying."""
        return await _credentials.register_credential(
            self._management, client_id, name=name, pem=pem, alg=alg
        )

    async def delete_credential(self, client_id: str, credential_id: str) -> bool:
        """Delete a (detached) credential; ``False`` if it was gone already."""
        return await _credentials.delete_credential(self._management, client_id, credential_id)

    async def get_auth_methods(self, client_id: str) -> AuthMethods:
        """How the client authenticates, and which credentials are enabled."""
        return await _credentials.get_auth_methods(self._management, client_id)

    async def set_enabled_credentials(self, client_id: str, ids: list[str]) -> None:
        """Replace the client's enabled Private Key JWT credentials with ``ids``."""
        await _credentials.set_enabled_credentials(self._management, client_id, ids)

    # -- internals ----------------------------------------------------------------------

    def _observe(self, endpoint: str, status: int) -> None:
        if self._observer is not None:
            self._observer(endpoint, status)

    async def _exchange(self, endpoint: str, method: str, path: str, **request: Any) -> Answer:
        """One request within the connection's deadline, observed; transport errors pass."""
        try:
            answer = await exchange(
                self._http,
                self.limits.breaker,
                method,
                path,
                deadline=self.connection.deadline,
                **request,
            )
        except (NoAnswer, Refused):
            self._observe(endpoint, 0)
            raise
        self._observe(endpoint, answer.status_code)
        return answer

    def _refused(self, refused: Refused) -> Auth0Unavailable:
        return Auth0Unavailable(
            f"Auth0 at {self.connection.domain} gave no timely answer to recent requests "
            f"({refused.why}); calls to it resume in {refused.retry_in:.0f}s"
        )

    async def _management(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        client_id: str,
        idempotent: bool,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        subject: str | None = None,
    ) -> Answer:
        refreshed = False
        subject = subject or f"client {client_id}"

        async def attempt() -> Answer:
            nonlocal refreshed
            await self.budget.acquire()
            token = await self.tokens.get()
            try:
                resp = await self._exchange(
                    endpoint,
                    method,
                    path,
                    json=json,
                    params=params,
                    headers={"Authorization": f"Bearer {token.reveal()}"},
                )
            except Refused as refused:
                raise self._refused(refused) from None
            except NoAnswer as exc:
                if exc.sent and not idempotent:
                    raise OutcomeUnknown(
                        f"{endpoint} for {subject} was sent but its answer was lost "
                        f"({exc.what}); read the secret back before changing it again"
                    ) from None
                raise _Retry(
                    Auth0Unavailable(f"{endpoint} for {subject} failed: {exc.what}")
                ) from None
            blocked = self.budget.observe(resp.status_code, resp.headers)
            status = resp.status_code
            if status < 300:
                return resp
            if status == 401 and not refreshed:
                # The token was refused before the request was processed: refresh once.
                refreshed = True
                self.tokens.invalidate(token)
                raise _Retry(Auth0Unavailable("management token refused"), wait=0.0)
            if status == 429:
                # Answered by the rate limiter before processing: safe to send again.
                raise _Retry(
                    RateLimited(f"Auth0 rate limit reached for {endpoint}", retry_after=blocked),
                    wait=0.0,
                )
            if status >= 500:
                if not idempotent:
                    raise OutcomeUnknown(
                        f"{endpoint} for {subject} answered HTTP {status}; the change "
                        "may have been applied: read the secret back before changing it again",
                        status=status,
                    )
                raise _Retry(Auth0Unavailable(f"{endpoint} for {subject} answered HTTP {status}"))
            raise management_error(resp, endpoint, client_id, subject)

        return await self._with_retries(attempt, what=endpoint)

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]], *, what: str) -> T:
        started = time.monotonic()
        last: Auth0Error = Auth0Unavailable(f"{what}: no attempt was made")
        for n in range(1, max(self.retry.attempts, 1) + 1):
            try:
                return await attempt()
            except _Retry as retry:
                last = retry.error
                wait = self.retry.delay(n) if retry.wait is None else retry.wait
                if (
                    n == self.retry.attempts
                    or time.monotonic() + wait - started > self.retry.deadline
                ):
                    break
                log.debug("retrying %s in %.2fs: %s", what, wait, last.message)
                await asyncio.sleep(wait)
        raise last
