"""Reliability scenarios (RELIABILITY.md): Auth0 faults and a single active instance.

Each test is one run of a scenario (``@pytest.mark.reliability``) and records
its figures; the suite writes the table at the end (tests/reliability.py).
Every scenario checks the three things users trust us with: the Secret holds
the value Auth0 accepts (nothing lost), Auth0 changed exactly once per
rotation (nothing doubled), and the status names what went wrong meanwhile.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from auth0_rotator.auth0 import RetryPolicy
from auth0_rotator_dev.devcluster import ControlPlane
from tests.conftest import REPO
from tests.integration.operator.conftest import TEST_ENGINE
from tests.integration.operator.harness import (
    FakeTenant,
    Kube,
    OperatorProcess,
    a0cs_body,
    fetched_apps,
    wait_for,
)
from tests.integration.operator.test_leader_election import Probes, _elected

Figures = dict[str, float | str]


def _settled(kube: Kube, namespace: str, name: str, request: str) -> dict[str, Any] | None:
    status = kube.get(namespace, name).get("status") or {}
    done = status.get("lastRotateRequest") == request and not status.get("rotation")
    return status if done else None


def _check_one_rotation(
    kube: Kube, fake: FakeTenant, namespace: str, client_id: str, figures: Figures
) -> None:
    """The Secret holds what Auth0 accepts and Auth0 changed once; recorded as figures."""
    current = fake.client(client_id)
    data = kube.secret(namespace, "app") or {}
    figures["lost secrets"] = int(data.get("client_secret") != current["client_secret"])
    figures["doubled rotations"] = max(current["secret_changes"] - 1, 0)
    assert figures["lost secrets"] == 0, "the Secret does not hold Auth0's secret"
    assert current["secret_changes"] == 1, f"Auth0 changed {current['secret_changes']}x"


@pytest.fixture
def no_faults(fake_tenant: FakeTenant) -> Iterator[None]:
    """Faults and settings injected by a test are removed afterwards."""
    yield
    fake_tenant.clear_faults()
    fake_tenant.http.put("/_fake/settings", json={"propagation_delay": 0}).raise_for_status()


def _calls(fake: FakeTenant, endpoint: str, since: float, client_id: str | None = None) -> int:
    """Calls of ``endpoint`` since ``since`` (about ``client_id``'s path, if given)."""
    return sum(
        1
        for c in fake.calls()
        if c["endpoint"] == endpoint
        and c["time"] >= since
        and (client_id is None or f"/clients/{client_id}" in c["path"])
    )


@dataclass
class FaultCase:
    """An Auth0 fault injected just before a forced rotation, and what it stands for."""

    id: str
    fault: dict[str, Any]
    figure: str
    count: int


FAULTS = [
    FaultCase("500-burst", {"endpoint": "patch-client", "status": 500, "count": 4}, "500s", 4),
    FaultCase("503-burst", {"endpoint": "patch-client", "status": 503, "count": 4}, "503s", 4),
    FaultCase("429-storm", {"endpoint": "*", "status": 429, "count": 12}, "429s", 12),
    # Longer than the client's 10 s timeout: the first PATCH is abandoned (maybe applied).
    FaultCase("timeout", {"endpoint": "patch-client", "latency": 11.0, "count": 1}, "timeouts", 1),
    FaultCase(
        "reset-after-commit",
        {"endpoint": "patch-client", "reset_after_commit": True, "count": 1},
        "resets after commit",
        1,
    ),
]


@pytest.mark.reliability("Auth0 faults during a rotation: 5xx, 429, timeout, reset after commit")
@pytest.mark.parametrize("case", FAULTS, ids=[c.id for c in FAULTS])
def test_an_auth0_fault_during_a_rotation_converges_once(
    case: FaultCase,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    no_faults: None,
    figures: Figures,
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    start = time.time()  # the fake's call log uses the wall clock of this machine
    fake_tenant.fault(**case.fault)
    kube.annotate_rotate(tenant_ns, "app", case.id)
    wait_for(partial(_settled, kube, tenant_ns, "app", case.id), 90, "the rotation")
    _check_one_rotation(kube, fake_tenant, tenant_ns, app_id, figures)
    figures[f"{case.figure} absorbed"] = case.count
    if case.fault["endpoint"] == "patch-client" and "status" in case.fault:
        attempts = _calls(fake_tenant, "patch-client", start, app_id)
        figures["PATCH attempts"] = attempts
        assert attempts == case.count + 1, "the refused ones, then one applied; never more"


@pytest.mark.reliability("propagation delay longer than the verification deadline")
def test_slow_propagation_reports_verification_failed_then_converges(
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    no_faults: None,
    figures: Figures,
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    verify_timeout: Any = TEST_ENGINE["verify_timeout"]
    delay = float(verify_timeout) + 5
    fake_tenant.http.put("/_fake/settings", json={"propagation_delay": delay}).raise_for_status()
    began = time.time()
    kube.annotate_rotate(tenant_ns, "app", "slow")
    failed = kube.wait_reason(tenant_ns, "app", "VerificationFailed", timeout=60)
    assert "not accept the new secret" in failed["message"]
    wait_for(partial(_settled, kube, tenant_ns, "app", "slow"), 90, "the rotation")
    assert kube.condition(tenant_ns, "app")["reason"] == "Rotated"
    # The retries verified again; none set the secret again.
    assert _calls(fake_tenant, "patch-client", began, app_id) == 1
    _check_one_rotation(kube, fake_tenant, tenant_ns, app_id, figures)
    figures["propagation delay (s)"] = delay


def _runbook_emergency_copy() -> str:
    """The commands of docs/runbooks.md "An application is failing now", as written."""
    text = (REPO / "docs" / "runbooks.md").read_text().split("## An application is failing now")[1]
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return "\n".join(line for line in block.splitlines() if "rollout restart" not in line)


def test_the_runbooks_emergency_copy_gets_the_new_secret_out_and_the_rotation_closes(
    control_plane: ControlPlane,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    no_faults: None,
) -> None:
    """docs/runbooks.md tells on-call to copy the staged value while verification waits.

    Auth0 holds the new secret, the Secret still the old one (VerificationFailed):
    the documented commands put Auth0's current secret into the Secret, and the
    operator then closes the rotation with that same value and one Auth0 change.
    """
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    delay = float(TEST_ENGINE["verify_timeout"]) + 20
    fake_tenant.http.put("/_fake/settings", json={"propagation_delay": delay}).raise_for_status()
    began = time.time()
    kube.annotate_rotate(tenant_ns, "app", "emergency")
    kube.wait_reason(tenant_ns, "app", "VerificationFailed", timeout=60)
    current = fake_tenant.client(app_id)["client_secret"]
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] != current  # the outage the runbook fixes

    script = (
        _runbook_emergency_copy()
        .replace("NAMESPACE", tenant_ns)
        .replace("SECRET_NAME", "app")
        .replace("NAME.staging", "app.staging")
    )
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        "PATH": f"{control_plane.kubectl.parent}:{os.environ['PATH']}",
    }
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == current

    wait_for(partial(_settled, kube, tenant_ns, "app", "emergency"), 90, "the rotation")
    assert kube.condition(tenant_ns, "app")["reason"] == "Rotated"
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == fake_tenant.client(app_id)["client_secret"]
    assert data["client_secret"] == current
    assert _calls(fake_tenant, "patch-client", began, app_id) == 1


@pytest.mark.reliability("token endpoint outage: bounded retries, reason shown, recovery")
def test_a_token_outage_is_retried_at_a_bounded_rate_and_recovers(
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    no_faults: None,
    figures: Figures,
) -> None:
    # A fresh tenant has no token yet: every Management API call needs /oauth/token first.
    fake_tenant.fault(endpoint="token", status=503, count=None)
    began = time.time()
    kube.create(tenant_ns, a0cs_body("app", app_id))
    condition = kube.wait_reason(tenant_ns, "app", "Auth0Unavailable", timeout=90)
    assert "503" in condition["message"] or "unavailable" in condition["message"].lower()
    time.sleep(10)
    window = time.time() - began
    attempts = _calls(fake_tenant, "token", began)
    fake_tenant.clear_faults()
    kube.wait_ready(tenant_ns, "app", reason="Fetched", timeout=90)
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == fake_tenant.client(app_id)["client_secret"]
    # Bound: at most RetryPolicy.attempts per reconcile, reconciles at least retry_after apart.
    retry_after_delta: Any = TEST_ENGINE["retry_after"]
    retry_after = float(retry_after_delta.total_seconds())
    bound = RetryPolicy.attempts * (window / retry_after + 1)
    figures["outage (s)"] = round(window, 1)
    figures["token requests per minute"] = round(attempts * 60 / window, 1)
    figures["bound per minute (test timings)"] = round(bound * 60 / window, 1)
    assert 1 <= attempts <= bound, (attempts, bound)


# -- a single active instance -------------------------------------------------------------


def _leads(probes: Probes) -> bool:
    return probes.leader() == 1.0


@pytest.mark.reliability("two operators, 50 forced rotations on 10 resources, leader SIGKILLed")
def test_fifty_rotations_with_a_standby_and_a_killed_leader_make_fifty_changes(
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    kube: Kube,
    processes: list[OperatorProcess],
    tmp_path: Path,
    figures: Figures,
) -> None:
    lease = f"rotator-{uuid.uuid4().hex[:6]}"
    probes = {name: Probes() for name in ("alpha", "beta")}
    started = {
        name: _elected(control_plane, fake_tenant, tmp_path, name, crash_ns, lease, probes[name])
        for name in ("alpha", "beta")
    }
    processes.extend(started.values())
    clients = fetched_apps(kube, fake_tenant, crash_ns, "ha", 10)

    killed = ""
    takeover = 0.0
    for round_no in range(5):
        request = f"round-{round_no}"
        for n in range(10):
            kube.annotate_rotate(crash_ns, f"app-{n}", request)
        if round_no == 3:
            # Mid-stream: ten rotations just requested, some in flight.
            time.sleep(0.3)
            killed = next(name for name in started if probes[name].leader() == 1.0)
            os.killpg(started[killed].proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            survivor = probes["beta" if killed == "alpha" else "alpha"]
            wait_for(partial(_leads, survivor), 60, "the standby takes over")
            takeover = time.monotonic() - killed_at
        for n in range(10):
            wait_for(partial(_settled, kube, crash_ns, f"app-{n}", request), 120, request)

    assert started[killed].proc.wait(timeout=10) == -signal.SIGKILL
    changes = [fake_tenant.client(c)["secret_changes"] for c in clients]
    lost = 0
    for n, client_id in enumerate(clients):
        data = kube.secret(crash_ns, f"app-{n}") or {}
        lost += data.get("client_secret") != fake_tenant.client(client_id)["client_secret"]
        assert (kube.get(crash_ns, f"app-{n}").get("status") or {})["rotationCount"] == 5
    figures["rotations requested"] = 50
    figures["Auth0 changes"] = sum(changes)
    figures["lost secrets"] = lost
    figures["doubled rotations"] = sum(max(c - 5, 0) for c in changes)
    figures["takeover after SIGKILL (s)"] = round(takeover, 1)
    assert lost == 0
    assert changes == [5] * 10, changes
