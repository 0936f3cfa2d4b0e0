"""The Management API access token of one tenant, cached and fetched once at a time.

A token is reused until shortly before it expires; concurrent callers that
find no valid token wait for one shared fetch (single flight). A 401 from the
Management API invalidates exactly the token that was refused, so a refresh
that already happened is not repeated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from auth0_rotator.secretvalue import SecretValue

__all__ = ["AccessToken", "TokenCache"]

REFRESH_MARGIN = 300.0
"""Seconds before expiry at which a token is no longer handed out (at most 10 % of its life)."""


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when (clock time) it expires."""

    value: SecretValue
    expires_at: float


class TokenCache:
    """Caches one tenant's management token; ``fetch`` obtains a new one."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[SecretValue, float]]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many tokens were fetched (for tests and metrics)."""

    @property
    def expires_at(self) -> float | None:
        """Clock time the cached token expires, if there is one."""
        return self._token.expires_at if self._token else None

    async def get(self) -> SecretValue:
        """A valid token, fetching one if needed (one fetch for all concurrent callers)."""
        token = self._token
        if token is not None and token.expires_at > self._clock():
            return token.value
        async with self._lock:
            token = self._token
            if token is not None and token.expires_at > self._clock():
                return token.value
            value, expires_in = await self._fetch()
            self.fetches += 1
            margin = min(REFRESH_MARGIN, expires_in * 0.1)
            self._token = AccessToken(value, self._clock() + expires_in - margin)
            return value

    def invalidate(self, refused: SecretValue) -> None:
        """Forget the token if it is the one the server refused."""
        if self._token is not None and self._token.value == refused:
            self._token = None
