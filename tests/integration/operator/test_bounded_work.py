"""One hostile tenant endpoint never stalls the operator for everyone else.

Two tenants point at hostile servers: one answers a byte every second (no read
timeout ever trips), one streams an endless body. Resources on them end in
``Auth0Unavailable`` (each request cut at its deadline or size cap, then the
domain's breaker answers at once); meanwhile rotations on a healthy tenant in
the same operator go through, and the operator's memory stays flat.
"""

from __future__ import annotations

import resource
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from auth0_rotator.auth0._transport import MAX_ANSWER_BYTES
from tests.hostile import HostileServer, ServerThread
from tests.integration.operator.harness import (
    M2M_ID,
    M2M_SECRET,
    FakeTenant,
    Kube,
    a0cs_body,
    make_tenant,
)


@pytest.fixture
def hostile(fake_tenant: FakeTenant) -> Iterator[dict[str, HostileServer]]:
    """A trickling and an endless server, with certificates the operator trusts."""
    tls: Path = fake_tenant.ca_file.parent
    thread = ServerThread()
    try:
        yield {
            mode: thread.start(HostileServer(mode, tls / "tls.crt", tls / "tls.key", interval=1.0))
            for mode in ("trickle", "endless")
        }
    finally:
        thread.stop()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.security("hostile tenant endpoints: a trickling answer and an endless body")
def test_hostile_endpoints_affect_only_the_resources_using_them(
    api: client.ApiClient,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    hostile: dict[str, HostileServer],
    attack: dict[str, float | str],
) -> None:
    peak_before = _peak_rss_mb()
    for mode, server in hostile.items():
        make_tenant(api, tenant_ns, mode, M2M_ID, M2M_SECRET, domain=server.domain)
        for n in range(3):
            kube.create(
                tenant_ns,
                a0cs_body(
                    f"{mode}-{n}", f"{mode}-{uuid.uuid4().hex[:8]}", tenantRef={"name": mode}
                ),
            )
    healthy = []
    for n in range(4):
        client_id = f"healthy-{uuid.uuid4().hex[:8]}"
        fake_tenant.create_client(client_id)
        kube.create(tenant_ns, a0cs_body(f"healthy-{n}", client_id))
        healthy.append(client_id)
    for n in range(4):
        kube.wait_ready(tenant_ns, f"healthy-{n}", reason="Fetched")
        kube.annotate_rotate(tenant_ns, f"healthy-{n}", "now")
    for n, client_id in enumerate(healthy):
        kube.wait_ready(tenant_ns, f"healthy-{n}", reason="Rotated")
        assert fake_tenant.client(client_id)["secret_changes"] == 1

    for mode in hostile:
        for n in range(3):
            condition = kube.wait_reason(tenant_ns, f"{mode}-{n}", "Auth0Unavailable", timeout=90)
            assert "within" in condition["message"] or "resume in" in condition["message"]
    trickle, endless = hostile["trickle"], hostile["endless"]
    assert trickle.connections and all(c.sent < 10 for c in trickle.connections)
    assert endless.connections
    assert all(c.sent < MAX_ANSWER_BYTES + 8 * 1024 * 1024 for c in endless.connections)
    # The breaker: a handful of requests per domain, not one per resource and retry.
    assert len(trickle.connections) <= 6 and len(endless.connections) <= 6
    grown = _peak_rss_mb() - peak_before
    assert grown < 150, f"peak RSS grew by {grown:.0f} MB"
    attack.update(
        outcome="bounded; 4 healthy rotations done meanwhile",
        reason="Auth0Unavailable (deadline, size cap, breaker)",
        auth0_writes=0,
    )
