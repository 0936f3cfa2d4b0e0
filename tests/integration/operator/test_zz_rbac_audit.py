"""The chart's RBAC is exactly what the code calls, as the API server's audit log records it.

An operator process runs with an identity of its own through every path that
touches the API: leader election, watches and lists, tenants found and missing,
a namespace selector, restart targets of every kind by name and by selector,
rotations (staging Secret created and deleted, target Secret created and
patched), status writes, Events created and aggregated. The audit log then
says which (group, resource, verb) it used; that set must equal what the
chart grants in its default mode, both ways: nothing denied, nothing unused.

The same log shows how Secrets were listed and watched: always with the
managed-by label selector (so the thousand unrelated Secrets created first
never reach the operator) and lists in pages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from kubernetes import client

from auth0_rotator_dev.devcluster import ControlPlane
from auth0_rotator_dev.devcluster.credentials import OPERATORS_GROUP
from tests.conftest import REPO, _kube_bin_dir
from tests.integration.operator.conftest import RunningOperator
from tests.integration.operator.harness import (
    ALLOW_LOCAL_FAKES,
    DOMAIN,
    M2M_ID,
    M2M_SECRET,
    OPERATOR_LOG_DIRS,
    FakeTenant,
    Kube,
    a0cs_body,
    make_tenant,
    wait_for,
)

USER = "auth0-rotator-rbac-probe"
CHART = REPO / "charts" / "auth0-rotator"
GROUP, VERSION = "auth0rotator.dev", "v1alpha1"
UNRELATED_SECRETS = 1000
CREATE = {
    "Deployment": "create_namespaced_deployment",
    "StatefulSet": "create_namespaced_stateful_set",
    "DaemonSet": "create_namespaced_daemon_set",
}
Use = tuple[str, str, str]
"""(apiGroup, resource[/subresource], verb)."""


def _chart_grants() -> set[Use]:
    """What the default install grants its ServiceAccount (ClusterRole and Lease Role)."""
    out = subprocess.run(
        [str(_kube_bin_dir() / "helm"), "template", "r", str(CHART), "--namespace", "ops"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    # Only roles bound to the operator's ServiceAccount: the team roles the chart
    # aggregates into view/edit/admin are for people, not for the operator.
    bound = {
        (d["roleRef"]["kind"], d["roleRef"]["name"])
        for d in docs
        if d["kind"] in ("ClusterRoleBinding", "RoleBinding")
        and any(s["kind"] == "ServiceAccount" for s in d.get("subjects") or [])
    }
    granted: set[Use] = set()
    for doc in docs:
        if (
            doc["kind"] in ("ClusterRole", "Role")
            and (doc["kind"], doc["metadata"]["name"]) in bound
        ):
            for rule in doc.get("rules") or []:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            granted.add((group, resource, verb))
    return granted


def _uses(events: list[dict[str, Any]]) -> set[Use]:
    used: set[Use] = set()
    for event in events:
        ref = event.get("objectRef")
        if not ref or not ref.get("resource"):
            continue  # discovery and other non-resource requests
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        used.add((ref.get("apiGroup", ""), resource, event["verb"]))
    return used


def _workload(kind: str, name: str) -> dict[str, Any]:
    labels = {"app": name}
    pod = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/c:1"}]},
    }
    spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": pod}
    if kind != "DaemonSet":
        spec["replicas"] = 1
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


def _handled(kube: Kube, namespace: str, request: str) -> bool:
    status = kube.get(namespace, "app").get("status") or {}
    return status.get("lastRotateRequest") == request and not status.get("rotation")


@pytest.fixture
def probe_ns(api: client.ApiClient, crds: None) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"rbac-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"rbac-probe": "yes"}}})
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.mark.security("a thousand unrelated Secrets in a watched namespace reach the operator")
def test_the_charts_rbac_is_exactly_what_the_code_calls(
    attack: dict[str, float | str],
    control_plane: ControlPlane,
    api: client.ApiClient,
    probe_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    operator: RunningOperator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # The suite's in-process operator also watches every ClusterAuth0Tenant: it must
    # not report the probe's tenant first (the probe would find nothing left to write).
    reporter = operator.context.tenant_status
    assert reporter is not None
    on_event = reporter.on_event

    async def not_the_probes(ref: Any, event_type: str, body: dict[str, Any]) -> None:
        if not ref.name.startswith("rbac-"):
            await on_event(ref, event_type, body)

    monkeypatch.setattr(reporter, "on_event", not_the_probes)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    for n in range(UNRELATED_SECRETS):
        core.create_namespaced_secret(
            probe_ns, {"metadata": {"name": f"unrelated-{n}"}, "stringData": {"k": "v" * 64}}
        )
    make_tenant(api, probe_ns, "default", M2M_ID, M2M_SECRET)
    shared = f"rbac-{uuid.uuid4().hex[:8]}"
    custom = client.CustomObjectsApi(api)
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "clusterauth0tenants",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterAuth0Tenant",
            "metadata": {"name": shared},
            "spec": {
                "domain": DOMAIN,
                "credentials": {
                    "secretRef": {"name": "default-credentials", "namespace": probe_ns}
                },
                "allowedNamespaces": {"namespaceSelector": {"matchLabels": {"rbac-probe": "yes"}}},
            },
        },
    )
    targets = []
    for kind, method in CREATE.items():
        for how in ("named", "selected"):
            name = f"{kind.lower()}-{how}"
            getattr(apps, method)(probe_ns, _workload(kind, name))
            targets.append(
                {"kind": kind, "name": name}
                if how == "named"
                else {"kind": kind, "selector": {"matchLabels": {"app": name}}}
            )
    apps_ids = [f"rbac-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for client_id in apps_ids:
        fake_tenant.create_client(client_id)

    kubeconfig = control_plane.user_kubeconfig(
        tmp_path / "probe.kubeconfig", USER, ("system:masters", OPERATORS_GROUP)
    )
    log = tmp_path / "probe-operator.log"
    OPERATOR_LOG_DIRS.append(tmp_path)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "auth0_rotator.cli",
                "run",
                "--namespace",
                probe_ns,
                "--identity",
                USER,
                "--leader-elect",
                "--lease-namespace",
                probe_ns,
                "--extra-ca-file",
                str(fake_tenant.ca_file),
                "--restart-window",
                "1",
                "--liveness",
                "",
                "--metrics",
                "",
                *ALLOW_LOCAL_FAKES,
            ],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: "auth0-rotator started" in log.read_text(), 60, "the probe operator")
        kube.create(probe_ns, a0cs_body("app", apps_ids[0], restartTargets=targets))
        kube.create(
            probe_ns,
            a0cs_body(
                "shared", apps_ids[1], tenantRef={"kind": "ClusterAuth0Tenant", "name": shared}
            ),
        )
        kube.create(probe_ns, a0cs_body("lost", "nobody", tenantRef={"name": "missing"}))
        kube.create(
            probe_ns,
            a0cs_body(
                "lost-cluster",
                "nobody-2",
                tenantRef={"kind": "ClusterAuth0Tenant", "name": "missing"},
            ),
        )
        kube.wait_ready(probe_ns, "app", reason="Fetched")
        kube.wait_ready(probe_ns, "shared", reason="Fetched")
        kube.wait_reason(probe_ns, "lost", "TenantNotFound")
        kube.wait_reason(probe_ns, "lost-cluster", "TenantNotFound")
        for request in ("one", "two"):  # the second RotationStarted Event is aggregated
            kube.annotate_rotate(probe_ns, "app", request)
            wait_for(partial(_handled, kube, probe_ns, request), 60, f"rotation {request}")
        wait_for(
            lambda: all(
                t.get("restartedRevision")
                for t in kube.get(probe_ns, "app")["status"].get("targets") or []
            ),
            60,
            "every target restarted",
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # releases the Lease
        proc.wait(timeout=30)
        custom.delete_cluster_custom_object(GROUP, VERSION, "clusterauth0tenants", shared)
    time.sleep(2)  # the audit log is written in batches (at most 1 s apart)

    events = control_plane.audit_events(USER)
    used, granted = _uses(events), _chart_grants()
    assert used - granted == set(), "the chart would deny these calls"
    assert granted - used == set(), "the chart grants these but the code never calls them"

    secret_reads = [
        e
        for e in events
        if (e.get("objectRef") or {}).get("resource") == "secrets"
        and e["verb"] in ("list", "watch")
    ]
    assert secret_reads
    for event in secret_reads:
        query = parse_qs(urlsplit(event["requestURI"]).query)
        assert query.get("labelSelector") == ["app.kubernetes.io/managed-by=auth0-rotator"], event[
            "requestURI"
        ]
        if event["verb"] == "list":
            assert query.get("limit") == ["500"], event["requestURI"]
    attack.update(
        outcome="never sent: every Secret list and watch had the managed-by selector",
        reason="-",
        auth0_writes=0,
    )
