"""What an operator restart costs: no Auth0 request for tenants already proven Ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client

from auth0_rotator_dev.devcluster import ControlPlane
from tests.integration.operator.harness import M2M_ID, FakeTenant, OperatorProcess, wait_for


def _tenant_status(api: client.ApiClient, ns: str) -> dict[str, Any]:
    obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(  # type: ignore[assignment]
        "auth0rotator.dev", "v1alpha1", ns, "auth0tenants", "default"
    )
    return dict(obj.get("status") or {})


def _tokens(fake: FakeTenant) -> int:
    return sum(
        1
        for c in fake.calls()
        if c["endpoint"] == "token" and c["client_id"] == M2M_ID and c["status"] == 200
    )


def test_restarted_operator_reports_a_proven_tenant_without_a_token_request(
    api: client.ApiClient,
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    processes: list[OperatorProcess],
    tmp_path: Path,
) -> None:
    first = OperatorProcess(control_plane, fake_tenant, tmp_path, "first")
    processes.append(first)
    proven = wait_for(
        lambda: (
            _tenant_status(api, crash_ns).get("credentialsVersion")
            and _tenant_status(api, crash_ns)
        ),
        60,
        "the tenant's token and credentials recorded",
    )
    assert proven["conditions"][0]["reason"] == "TokenObtained"
    first.stop()
    before = _tokens(fake_tenant)

    second = OperatorProcess(control_plane, fake_tenant, tmp_path, "second")
    processes.append(second)
    line = f"Auth0Tenant/{crash_ns}/default is Ready with these credentials; no token requested"
    wait_for(lambda: line in second.log.read_text(), 60, "the restarted operator saw the tenant")
    assert _tokens(fake_tenant) == before
    assert _tenant_status(api, crash_ns) == proven

    # New credentials are proven again: a token request, and the new version recorded.
    core = client.CoreV1Api(api)
    secret_name = "default-credentials"
    core.patch_namespaced_secret(secret_name, crash_ns, {"metadata": {"labels": {"touched": "1"}}})
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        "auth0rotator.dev",
        "v1alpha1",
        crash_ns,
        "auth0tenants",
        "default",
        {"metadata": {"annotations": {"touched": "1"}}},
    )
    reproven = wait_for(
        lambda: (
            (s := _tenant_status(api, crash_ns)).get("credentialsVersion")
            != proven["credentialsVersion"]
            and s
        ),
        60,
        "the new credentials proven",
    )
    assert reproven["conditions"][0]["status"] == "True"
    assert _tokens(fake_tenant) == before + 1
