"""One HTTP exchange with an Auth0 domain, bounded in time and in size.

``httpx`` timeouts bound each read, not a request: a server that trickles one
byte every few seconds never trips them, and a server that streams an endless
body fills memory. :func:`exchange` gives every request one total deadline
(connect, send, the whole answer) and reads at most ``max_bytes`` of the
answer; either limit ends the request as :class:`NoAnswer`, as does a
connection that could not be made or was cut. The domain's
:class:`CircuitBreaker` hears about every exchange and may refuse one before it
is sent (:class:`Refused`).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from auth0_rotator.auth0._breaker import CircuitBreaker

__all__ = ["MAX_ANSWER_BYTES", "Answer", "NoAnswer", "Refused", "describe", "exchange"]

MAX_ANSWER_BYTES = 1024 * 1024
"""Largest answer read from Auth0 (its answers are a few kB); beyond this, no answer."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer read completely: status, headers and body."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (``ValueError`` if it is not)."""
        return json.loads(self.body)


class NoAnswer(Exception):
    """No complete answer in time; ``sent`` says whether the request may have been processed."""

    def __init__(self, what: str, *, sent: bool) -> None:
        super().__init__(what)
        self.what = what
        self.sent = sent


class Refused(Exception):
    """The domain's breaker is open: the request was not sent; retry after ``retry_in`` s."""

    def __init__(self, retry_in: float, why: str) -> None:
        super().__init__(f"retry in {retry_in:.0f}s")
        self.retry_in = retry_in
        self.why = why
        """What the last stalled request met."""


async def exchange(
    http: httpx.AsyncClient,
    breaker: CircuitBreaker,
    method: str,
    path: str,
    *,
    deadline: float,
    max_bytes: int = MAX_ANSWER_BYTES,
    **request: Any,
) -> Answer:
    """Send one request and read its whole answer within ``deadline`` seconds.

    Raises :class:`Refused` (not sent) or :class:`NoAnswer`; an answer of any
    status is returned.
    """
    if not breaker.admit():
        raise Refused(breaker.retry_in() or breaker.cooldown, breaker.last_stall)
    try:
        async with asyncio.timeout(deadline):
            built = http.build_request(method, path, **request)
            response = await http.send(built, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise NoAnswer(f"an answer larger than {max_bytes} bytes", sent=True)
            finally:
                await response.aclose()
    except TimeoutError:
        what = f"no complete answer within {deadline:g}s"
        breaker.stalled(what)
        raise NoAnswer(what, sent=True) from None
    except NoAnswer as exc:
        breaker.stalled(exc.what)
        raise
    except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        breaker.stalled(describe(exc))
        raise NoAnswer(describe(exc), sent=False) from None
    except httpx.ConnectError as exc:
        # Refused or untrusted at once: it cost no time, so the breaker is not told.
        raise NoAnswer(describe(exc), sent=False) from None
    except httpx.TimeoutException as exc:
        breaker.stalled(describe(exc))
        raise NoAnswer(describe(exc), sent=True) from None
    except httpx.HTTPError as exc:
        raise NoAnswer(describe(exc), sent=True) from None
    breaker.answered()
    return Answer(response.status_code, response.headers, bytes(body))


def describe(exc: BaseException) -> str:
    """A short description of a transport error that never includes request data."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return (
                "its TLS certificate is not trusted; put the CA that signed it in the "
                "tenant's spec.caBundle (verification cannot be turned off)"
            )
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__
