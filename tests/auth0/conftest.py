"""Fixtures: a fake Auth0 tenant over HTTPS on 127.0.0.1, and clients for it."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth0_rotator.auth0 import Auth0Client, RetryPolicy, TenantConnection
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator_dev.fake_auth0 import FakeAuth0Server

ALL_SCOPES = ["read:client_keys", "update:client_keys"]
FAST_RETRY = RetryPolicy(attempts=4, base=0.05, cap=0.2, deadline=10)


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fake-auth0-tls")


@pytest.fixture
async def fake(tls_dir: Path) -> AsyncIterator[FakeAuth0Server]:
    """A fresh fake tenant over HTTPS, generous rate limit unless a test lowers it."""
    async with FakeAuth0Server(tls_dir=tls_dir) as server:
        assert server.tenant is not None
        server.tenant.apply_settings({"rate_limit": {"requests_per_second": 1000, "burst": 1000}})
        yield server


@pytest.fixture
async def control(fake: FakeAuth0Server) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the fake (both its Auth0 API and its /_fake/ control API)."""
    verify = ssl.create_default_context(cafile=str(fake.ca_file))
    async with httpx.AsyncClient(base_url=fake.url, verify=verify) as client:
        yield client


CreateClient = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def create_client(control: httpx.AsyncClient, fake: FakeAuth0Server) -> CreateClient:
    """Create a client in the fake; ``scopes`` become a Management API grant."""

    async def create(
        client_id: str, scopes: list[str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"client_id": client_id, **extra}
        if scopes is not None:
            body["grants"] = {f"https://{fake.domain}/api/v2/": scopes}
        resp = await control.post("/_fake/clients", json=body)
        assert resp.status_code == 201, resp.text
        created: dict[str, Any] = resp.json()
        return created

    return create


async def management_bearer(
    control: httpx.AsyncClient,
    fake: FakeAuth0Server,
    create_client: CreateClient,
    scopes: list[str],
) -> dict[str, str]:
    """Create the management client ``m2m`` with ``scopes``; its Authorization header."""
    m2m = await create_client("m2m", scopes)
    resp = await control.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "m2m",
            "client_secret": m2m["client_secret"],
            "audience": f"https://{fake.domain}/api/v2/",
        },
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


MakeAuth0 = Callable[..., Awaitable[Auth0Client]]


@pytest.fixture
async def make_auth0(
    fake: FakeAuth0Server, create_client: CreateClient
) -> AsyncIterator[MakeAuth0]:
    """Create a management client with ``scopes`` and an :class:`Auth0Client` using it."""
    made: list[Auth0Client] = []

    async def make(
        scopes: list[str] | None = None,
        *,
        client_id: str = "m2m",
        rate: float = 1000,
        burst: int = 1000,
        retry: RetryPolicy = FAST_RETRY,
        request_timeout: float = 10.0,
        **kwargs: Any,
    ) -> Auth0Client:
        m2m = await create_client(client_id, ALL_SCOPES if scopes is None else scopes)
        conn = TenantConnection(
            domain=fake.domain,
            client_id=client_id,
            client_secret=SecretValue(m2m["client_secret"]),
            requests_per_second=rate,
            burst=burst,
            ca_file=str(fake.ca_file),
            timeout=request_timeout,
        )
        client = Auth0Client(conn, retry=retry, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
