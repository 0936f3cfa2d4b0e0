"""The token endpoint: the management token, and proving a new secret or key is accepted.

A mixin of :class:`~auth0_rotator.auth0.Auth0Client`: it fetches the
management application's access token (client secret, or a client assertion
signed with its private key, fresh per attempt since each ``jti`` is used
once) and answers whether Auth0 accepts a client's new secret or key
(``verify_client_secret``, ``verify_private_key``), asking again while a new
value propagates. Assertions are signed off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from auth0_rotator import keypairs
from auth0_rotator.auth0._answers import json_object, oauth_error
from auth0_rotator.auth0._config import TenantConnection
from auth0_rotator.auth0._errors import (
    Auth0Error,
    Auth0Unavailable,
    InsufficientScope,
    InvalidCredentials,
    RateLimited,
)
from auth0_rotator.auth0._transport import Answer, NoAnswer, Refused
from auth0_rotator.secretvalue import SecretValue

__all__ = ["Retry", "TokenEndpoint"]

T = TypeVar("T")


class Retry(Exception):
    """Internal: this attempt failed in a way that may be retried."""

    def __init__(self, error: Auth0Error, wait: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.wait = wait


class TokenEndpoint:
    """``/oauth/token`` for :class:`~auth0_rotator.auth0.Auth0Client` (see the module)."""

    connection: TenantConnection

    async def _exchange(self, endpoint: str, method: str, path: str, **request: Any) -> Answer:
        raise NotImplementedError

    def _refused(self, refused: Refused) -> Auth0Unavailable:
        raise NotImplementedError

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]], *, what: str) -> T:
        raise NotImplementedError

    async def verify_private_key(
        self,
        client_id: str,
        private_key: SecretValue,
        *,
        algorithm: str,
        key_id: str | None = None,
        within: float = 60.0,
        interval: float = 1.0,
    ) -> bool:
        """Whether Auth0 authenticates ``client_id`` by an assertion signed with ``private_key``.

        As :meth:`verify_client_secret`, with a fresh assertion (a new ``jti``)
        each time: 401 means the key is not accepted (yet: newly enabled keys
        take a while), 200 or 403 that it is.
        """

        async def form() -> dict[str, str]:
            return await self._assertion_form(client_id, private_key, algorithm, key_id)

        return await self._verify(form, within=within, interval=interval)

    async def verify_client_secret(
        self, client_id: str, secret: SecretValue, *, within: float = 60.0, interval: float = 1.0
    ) -> bool:
        """Whether Auth0 authenticates ``client_id`` with ``secret`` within ``within`` seconds.

        A token (200) or a refusal after authentication (403: grant type or API
        not allowed for this client) proves the secret is accepted; 401
        ``access_denied`` means not accepted (yet): new secrets can take a while
        to propagate, so it is asked again every ``interval`` seconds.
        """
        fields = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret.reveal(),
            "audience": self.connection.management_audience,
        }

        async def form() -> dict[str, str]:
            return fields

        return await self._verify(form, within=within, interval=interval)

    async def _verify(
        self, form: Callable[[], Awaitable[dict[str, str]]], *, within: float, interval: float
    ) -> bool:
        deadline = time.monotonic() + within
        while True:
            status = await self._token_request_status(await form())
            if status in (200, 403):
                return True
            if time.monotonic() + interval > deadline:
                return False
            await asyncio.sleep(interval)

    async def _assertion_form(
        self, client_id: str, private_key: SecretValue, algorithm: str, key_id: str | None
    ) -> dict[str, str]:
        """A token request authenticated by a fresh assertion (signed off the event loop)."""
        assertion = await asyncio.to_thread(
            keypairs.sign_assertion,
            private_key,
            algorithm=algorithm,
            client_id=client_id,
            domain=self.connection.domain,
            key_id=key_id,
        )
        return {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_assertion_type": keypairs.ASSERTION_TYPE,
            "client_assertion": assertion.reveal(),
            "audience": self.connection.management_audience,
        }

    async def _token_request_status(self, form: Mapping[str, str]) -> int:
        try:
            answer = await self._exchange("verify-token", "POST", "/oauth/token", data=form)
        except (NoAnswer, Refused):
            return 0
        return answer.status_code

    async def _fetch_management_token(self) -> tuple[SecretValue, float]:
        return await self._with_retries(self._token_attempt, what="token request")

    async def _management_form(self) -> dict[str, str]:
        """The management application's token request: secret, or a fresh assertion."""
        conn = self.connection
        if conn.private_key is not None:
            try:
                return await self._assertion_form(
                    conn.client_id, conn.private_key, conn.algorithm, conn.key_id
                )
            except keypairs.InvalidPrivateKey as exc:
                raise InvalidCredentials(
                    f"the private key of management client {conn.client_id} cannot sign: {exc}"
                ) from None
        if conn.client_secret is None:
            raise InvalidCredentials(f"management client {conn.client_id} has no credentials")
        return {
            "grant_type": "client_credentials",
            "client_id": conn.client_id,
            "client_secret": conn.client_secret.reveal(),
            "audience": conn.management_audience,
        }

    async def _token_attempt(self) -> tuple[SecretValue, float]:
        conn = self.connection
        form = await self._management_form()  # per attempt: an assertion is used once
        try:
            resp = await self._exchange("token", "POST", "/oauth/token", data=form)
        except Refused as refused:
            raise self._refused(refused) from None
        except NoAnswer as exc:
            raise Retry(
                Auth0Unavailable(f"cannot reach https://{conn.domain}/oauth/token: {exc.what}")
            ) from None
        if resp.status_code == 200:
            body = json_object(resp)
            token, expires_in = body.get("access_token"), body.get("expires_in", 86400)
            if not isinstance(token, str) or not isinstance(expires_in, int | float):
                raise Auth0Unavailable("token endpoint answered 200 without an access token")
            return SecretValue(token), float(expires_in)
        error = oauth_error(resp)
        if resp.status_code == 429:
            raise Retry(RateLimited("token endpoint is rate limited", retry_after=1.0), wait=1.0)
        if resp.status_code >= 500:
            raise Retry(Auth0Unavailable(f"token endpoint answered HTTP {resp.status_code}"))
        if resp.status_code == 401:
            what = (
                "private key (is its public key an enabled credential of the application?)"
                if conn.private_key is not None
                else "secret"
            )
            raise InvalidCredentials(
                f"Auth0 refused the management credentials of client {conn.client_id} "
                f"({error}): check the client id and {what} in the tenant's credentials Secret",
                status=401,
            )
        if error == "unauthorized_client":
            raise InvalidCredentials(
                f"management client {conn.client_id} may not use the client_credentials grant: "
                "enable it in the application's advanced settings (Grant Types)",
                status=resp.status_code,
            )
        raise InsufficientScope(
            f"management client {conn.client_id} is not authorized for the Management API "
            f"({conn.management_audience}): create a client grant with the scopes "
            "update:client_keys and read:client_keys",
            scopes=("update:client_keys", "read:client_keys"),
            status=resp.status_code,
        )
