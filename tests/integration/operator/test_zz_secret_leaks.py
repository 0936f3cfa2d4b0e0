"""No secret value in logs, Events, status, metrics or annotations (SPEC §4).

Runs after the other operator tests (file order) and scans everything they
produced against every client secret the fake tenant ever issued.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from tests.integration.operator.conftest import RunningOperator
from tests.integration.operator.harness import M2M_SECRET, OPERATOR_LOG_DIRS, FakeTenant


def _custom_objects(api: client.ApiClient) -> list[dict[str, Any]]:
    custom = client.CustomObjectsApi(api)
    found: list[dict[str, Any]] = []
    for plural in ("auth0clientsecrets", "auth0tenants"):
        found += custom.list_cluster_custom_object("auth0rotator.dev", "v1alpha1", plural)["items"]
    found += custom.list_cluster_custom_object(
        "auth0rotator.dev", "v1alpha1", "clusterauth0tenants"
    )["items"]
    return found


@pytest.mark.reliability("secret-leak scan: logs, Events, status, metrics, annotations")
def test_no_issued_secret_appears_in_logs_events_status_or_annotations(
    api: client.ApiClient,
    operator: RunningOperator,
    fake_tenant: FakeTenant,
    figures: dict[str, float | str],
) -> None:
    secrets = {s for s in fake_tenant.issued_secrets() if len(s) >= 16} | {M2M_SECRET}
    assert len(secrets) > 20, "the suite should have issued many secrets"

    log_text = "\n".join(operator.logs.lines)
    for directory in set(OPERATOR_LOG_DIRS):
        for path in directory.glob("*operator-*.log"):
            log_text += path.read_text(errors="replace")
    # The scan is only meaningful if it saw the operator's own lines.
    assert any("auth0-rotator started" in line for line in operator.logs.lines)
    assert "rotation started" in log_text and "rotation finished" in log_text

    events = client.CoreV1Api(api).list_event_for_all_namespaces().items
    event_text = "\n".join(f"{e.reason} {e.message}" for e in events)
    # Events and statuses of the whole session, also of namespaces deleted since.
    recorded = "\n".join(operator.recorder.texts)
    assert "RotationStarted" in recorded and "secretRevision" in recorded
    with urllib.request.urlopen(operator.metrics_url, timeout=5) as response:  # noqa: S310
        metrics_text = response.read().decode()
    assert "auth0_rotator_rotations_total" in metrics_text
    objects_text = json.dumps(
        [{"status": o.get("status"), "metadata": o.get("metadata")} for o in _custom_objects(api)]
    )
    secret_meta = json.dumps(
        [
            {"labels": s.metadata.labels, "annotations": s.metadata.annotations}
            for s in client.CoreV1Api(api).list_secret_for_all_namespaces().items
        ]
    )

    for where, text in (
        ("logs", log_text),
        ("events", event_text),
        ("events and statuses recorded during the session", recorded),
        ("metrics", metrics_text),
        ("status/metadata", objects_text),
        ("Secret labels/annotations", secret_meta),
    ):
        leaked = [s[:6] + "…" for s in secrets if s in text]
        figures["leaked values"] = float(figures.get("leaked values", 0)) + len(leaked)
        figures["values searched for"] = len(secrets)
        figures[f"{where.split()[0]} scanned (kB)"] = round(len(text) / 1024)
        assert leaked == [], f"secret values found in {where}: {leaked}"
