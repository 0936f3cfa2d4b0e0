"""Every Auth0 request is bounded: a deadline, an answer size, a capped 429 wait, a breaker.

Against hostile servers over real TLS sockets: one that trickles a byte every
few seconds (per-read timeouts never trip) and one that streams an endless
body. The client gives up on each within its deadline or size cap, and after
two such failures the domain's breaker refuses calls without the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from auth0_rotator.auth0 import (
    Auth0Client,
    Auth0Unavailable,
    CircuitBreaker,
    DomainLimits,
    InvalidCABundle,
    InvalidRequest,
    RateBudget,
    RetryPolicy,
    TenantConnection,
)
from auth0_rotator.auth0._tls import tls_context
from auth0_rotator.auth0._transport import MAX_ANSWER_BYTES
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator_dev.fake_auth0 import FakeAuth0Server
from tests.auth0.conftest import CreateClient, MakeAuth0
from tests.hostile import HostileServer


@pytest.fixture
async def hostile(fake: FakeAuth0Server, tls_dir: Path) -> AsyncIterator[Callable[..., object]]:
    """Start misbehaving servers with a certificate the client trusts."""
    started: list[HostileServer] = []

    async def start(mode: str, interval: float = 1.0) -> HostileServer:
        server = HostileServer(mode, tls_dir / "tls.crt", tls_dir / "tls.key", interval=interval)
        started.append(await server.start())
        return server

    yield start
    for server in started:
        await server.stop()


def _client(domain: str, ca_file: Path, **limits: int) -> Auth0Client:
    return Auth0Client(
        TenantConnection(
            domain=domain,
            client_id="m2m",
            client_secret=SecretValue("s" * 48),
            ca_file=str(ca_file),
            timeout=5.0,
            deadline=0.5,
        ),
        retry=RetryPolicy(attempts=3, base=0.01, cap=0.02, deadline=10),
        limits=DomainLimits(RateBudget(100, 100), CircuitBreaker(cooldown=60, **limits)),
    )


async def test_a_trickling_server_is_given_up_on_at_the_deadline_then_refused(
    hostile: Callable[..., object], fake: FakeAuth0Server
) -> None:
    server: HostileServer = await hostile("trickle")  # type: ignore[misc]
    auth0 = _client(server.domain, fake.ca_file)
    try:
        with pytest.raises(Auth0Unavailable) as first:
            await auth0.get_client_secret("app")
        # Two requests reached the server, each cut at its deadline (one byte each,
        # of a 40-byte answer); the third attempt was refused without the network.
        assert len(server.connections) == 2
        assert all(c.sent < 5 for c in server.connections)
        assert "resume in" in first.value.message
        assert auth0.limits.breaker.open
        with pytest.raises(Auth0Unavailable):
            await auth0.set_client_secret("app", SecretValue("n" * 64))
        assert len(server.connections) == 2
    finally:
        await auth0.aclose()


async def test_an_endless_answer_is_read_only_up_to_the_cap(
    hostile: Callable[..., object], fake: FakeAuth0Server
) -> None:
    server: HostileServer = await hostile("endless")  # type: ignore[misc]
    auth0 = _client(server.domain, fake.ca_file, threshold=1)
    try:
        assert await auth0._token_request_status({"grant_type": "client_credentials"}) == 0
        await asyncio.sleep(0.5)  # let the server notice the hang-up
        (connection,) = server.connections
        # What the server managed to push before the client hung up: the cap plus
        # what the socket buffers hold, never the endless rest.
        assert connection.hung_up
        assert connection.sent < MAX_ANSWER_BYTES + 8 * 1024 * 1024
    finally:
        await auth0.aclose()


async def test_an_answer_resets_the_breaker(
    make_auth0: MakeAuth0, create_client: CreateClient
) -> None:
    await create_client("app")
    auth0 = await make_auth0()
    auth0.limits.breaker.stalled()  # one failure: below the threshold
    assert (await auth0.get_client_secret("app")).reveal()
    assert not auth0.limits.breaker.open
    assert auth0.limits.breaker._failures == 0


def test_the_breaker_lets_one_probe_through_after_its_cooldown() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=30, clock=lambda: now[0])
    breaker.stalled()
    assert breaker.admit()
    breaker.stalled()
    assert not breaker.admit() and breaker.retry_in() == 30
    now[0] = 31.0
    assert breaker.admit()  # the probe
    assert not breaker.admit()  # others wait for it
    breaker.stalled()  # the probe failed: open again at once
    assert breaker.retry_in() == 30
    now[0] = 62.0
    assert breaker.admit()
    breaker.answered()
    assert breaker.admit() and breaker.admit()


async def test_a_far_rate_limit_reset_is_capped() -> None:
    now = [1000.0]
    budget = RateBudget(10, 10, clock=lambda: now[0], wall_clock=lambda: now[0])
    blocked = budget.observe(429, {"x-ratelimit-reset": str(int(now[0]) + 86400)})
    assert 60 <= blocked <= 60.3


@pytest.mark.parametrize("identifier", [".", "..", ""])
async def test_dot_segments_never_reach_the_url(
    identifier: str, make_auth0: MakeAuth0, fake: FakeAuth0Server
) -> None:
    auth0 = await make_auth0()
    assert fake.tenant is not None
    before = len(fake.tenant.calls)
    with pytest.raises(InvalidRequest, match="not an Auth0 id"):
        await auth0.set_client_secret(identifier, SecretValue("n" * 64))
    assert len(fake.tenant.calls) == before


def test_clients_trusting_the_same_cas_share_one_tls_context(fake: FakeAuth0Server) -> None:
    _client("a.example", fake.ca_file)
    before = tls_context.cache_info()
    for n in range(20):
        _client(f"b{n}.example", fake.ca_file)
    after = tls_context.cache_info()
    assert after.hits - before.hits == 20 and after.currsize == before.currsize
    assert tls_context(str(fake.ca_file), None) is tls_context(str(fake.ca_file), None)
    with pytest.raises(InvalidCABundle, match=r"spec\.caBundle"):
        tls_context(None, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")


def test_one_budget_serves_every_client_of_a_domain(fake: FakeAuth0Server) -> None:
    limits = DomainLimits.for_rate(2, 10)
    first = Auth0Client(
        TenantConnection(fake.domain, "a", SecretValue("s" * 48), ca_file=str(fake.ca_file)),
        limits=limits,
    )
    second = Auth0Client(
        TenantConnection(fake.domain, "b", SecretValue("s" * 48), ca_file=str(fake.ca_file)),
        limits=limits,
    )
    assert first.budget is second.budget
    limits.budget.configure(1, 5)
    assert second.budget.burst == 5
