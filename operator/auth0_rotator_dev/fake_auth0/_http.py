"""What every endpoint of the fake tenant shares: errors, the request context, the middleware.

Error bodies are Auth0's: ``{"statusCode","error","message","errorCode"}`` for
the Management API, ``{"error","error_description"}`` for ``/oauth/token``.
The middleware applies injected faults (status, latency, reset after commit),
the per-tenant rate limit (with ``x-ratelimit-*`` headers on every Management
API answer) and records every call in the call log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from auth0_rotator_dev.fake_auth0._state import CallRecord, FakeClient, Fault, IssuedToken, Tenant

__all__ = [
    "CLIENT_ID",
    "REASONS",
    "TENANT_KEY",
    "ApiError",
    "Handler",
    "OAuthError",
    "auth0_middleware",
    "bearer",
    "client_or_404",
    "json_body",
    "tenant_of",
]

TENANT_KEY = web.AppKey("tenant", Tenant)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLIENT_ID = web.RequestKey("client_id", str)
"""The client a request is made by or about (for the call log)."""

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ApiError(Exception):
    """An Auth0-shaped error answer."""

    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "statusCode": self.status,
            "error": REASONS.get(self.status, "Error"),
            "message": self.message,
        }
        if self.error_code:
            body["errorCode"] = self.error_code
        return web.json_response(body, status=self.status)


class OAuthError(Exception):
    """An error answer of the Authentication API (``/oauth/token``)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> web.Response:
        return web.json_response(
            {"error": self.error, "error_description": self.description}, status=self.status
        )


def tenant_of(request: web.Request) -> Tenant:
    return request.app[TENANT_KEY]


def bearer(request: web.Request, any_of: tuple[str, ...]) -> IssuedToken:
    tenant = tenant_of(request)
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise ApiError(401, "Missing authentication")
    issued = tenant.tokens.get(header[7:].strip())
    if issued is None:
        raise ApiError(401, "Invalid token")
    request[CLIENT_ID] = issued.client_id
    if issued.expires_at <= tenant.clock():
        raise ApiError(401, "Expired token received for JSON Web Token validation")
    if issued.audience != tenant.management_audience:
        raise ApiError(401, "Bad audience: " + issued.audience)
    if not issued.scopes.intersection(any_of):
        raise ApiError(
            403, f"Insufficient scope, expected any of: {','.join(any_of)}", "insufficient_scope"
        )
    return issued


def client_or_404(request: web.Request) -> FakeClient:
    client = tenant_of(request).clients.get(request.match_info["id"])
    if client is None:
        raise ApiError(404, "The client does not exist", "inexistent_client")
    return client


# -- middleware: faults, rate limit, call log -----------------------------------------


def _endpoint_of(request: web.Request) -> str:
    route = request.match_info.route
    return route.name or "unknown"


@web.middleware
async def auth0_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    tenant = tenant_of(request)
    if request.path.startswith("/_fake/"):
        return await handler(request)
    endpoint = _endpoint_of(request)
    # Read (and cache) the body now: a caller that times out during injected
    # latency must not stop the server from processing what it received.
    await request.read()
    fault = tenant.take_fault(endpoint)
    if fault and fault.latency:
        await asyncio.sleep(fault.latency)
    response = await _answer(request, handler, tenant, endpoint, fault)
    tenant.calls.append(
        CallRecord(
            method=request.method,
            path=request.path_qs,
            endpoint=endpoint,
            status=response.status,
            time=tenant.clock(),
            client_id=request.get(CLIENT_ID),
        )
    )
    if fault and fault.reset_after_commit and response.status < 400:
        # The change is committed, but the caller never learns it.
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
    return response


async def _answer(
    request: web.Request, handler: Handler, tenant: Tenant, endpoint: str, fault: Fault | None
) -> web.StreamResponse:
    if fault and fault.status:
        return _fault_response(endpoint, fault.status)
    # The Management API is rate limited per tenant; the token endpoint is not here.
    taken = tenant.bucket.take() if endpoint != "token" else None
    response: web.StreamResponse
    if taken is not None and not taken[0]:
        response = ApiError(429, "Global limit has been reached", "too_many_requests").response()
    else:
        try:
            response = await handler(request)
        except (ApiError, OAuthError) as exc:
            response = exc.response()
    if taken is not None:
        _set_rate_headers(response, tenant, taken)
    return response


def _set_rate_headers(
    response: web.StreamResponse, tenant: Tenant, taken: tuple[bool, int, int]
) -> None:
    _, remaining, reset = taken
    response.headers["x-ratelimit-limit"] = str(tenant.bucket.burst)
    response.headers["x-ratelimit-remaining"] = str(remaining)
    response.headers["x-ratelimit-reset"] = str(reset)


def _fault_response(endpoint: str, status: int) -> web.Response:
    if endpoint == "token":
        if status == 429:
            return OAuthError(429, "too_many_requests", "Rate limit exceeded").response()
        return OAuthError(status, "server_error", "Service unavailable (injected)").response()
    code = "too_many_requests" if status == 429 else None
    return ApiError(status, f"{REASONS.get(status, 'Error')} (injected)", code).response()


async def json_body(request: web.Request, *, allow_empty: bool) -> Any:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return None
        raise ApiError(400, "Payload validation error: 'Expected type object'", "invalid_body")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "Invalid request payload JSON format", "invalid_body") from exc
