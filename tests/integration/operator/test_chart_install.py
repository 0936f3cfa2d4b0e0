"""The Helm chart installs, and its RBAC is exactly enough (issue: delivery).

``helm install`` puts the chart into the local control plane (kwok runs the
pods, so the Deployment becomes available without an image). Then the
operator runs here with a token of the chart's own ServiceAccount, not as
admin, and performs a full rotation with a restart: every call it makes is
allowed by the chart's roles. With ``watchNamespaces`` the same identity is
refused Secrets anywhere else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from auth0_rotator_dev.devcluster import ControlPlane
from tests.conftest import REPO, _kube_bin_dir
from tests.integration.operator.harness import (
    ALLOW_LOCAL_FAKES,
    M2M_ID,
    M2M_SECRET,
    OPERATOR_LOG_DIRS,
    FakeTenant,
    Kube,
    a0cs_body,
    make_tenant,
    wait_for,
)

CHART = REPO / "charts" / "auth0-rotator"
REVISION = "auth0rotator.dev/secret-revision"
# What kopf or our controller log when the Kubernetes API refuses a call (a
# missing RBAC rule). Auth0's own 403s (verification of a client without an API
# grant) are expected and go to the fake tenant's /oauth/token.
DENIED = ("forbidden", "Not enough permissions", "APIForbiddenError", "HTTP 403")


@dataclass
class Release:
    """An installed release: its name, namespace and ServiceAccount."""

    name: str
    namespace: str
    service_account: str


def _helm(plane: ControlPlane, *args: str) -> str:
    out = subprocess.run(
        [str(_kube_bin_dir() / "helm"), "--kubeconfig", str(plane.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, f"helm {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _namespace(api: client.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def install(control_plane: ControlPlane, api: client.ApiClient, crds: None) -> Iterator[Any]:
    """``install(*helm_args)`` -> Release; uninstalled and namespaces deleted afterwards."""
    made: list[tuple[str, str]] = []
    namespaces: list[str] = []

    def run(*args: str) -> Release:
        namespace = _namespace(api, "h-sys")
        namespaces.append(namespace)
        name = f"auth0-rotator-{uuid.uuid4().hex[:6]}"
        out = _helm(
            control_plane,
            "install",
            name,
            str(CHART),
            "--namespace",
            namespace,
            "--wait",
            "--timeout",
            "120s",
            *args,
        )
        made.append((name, namespace))
        assert "STATUS: deployed" in out
        accounts = client.CoreV1Api(api).list_namespaced_service_account(
            namespace, label_selector=f"app.kubernetes.io/instance={name}"
        )
        assert len(accounts.items) == 1
        return Release(name, namespace, accounts.items[0].metadata.name)

    yield run
    for name, namespace in made:
        _helm(control_plane, "uninstall", name, "--namespace", namespace, "--wait")
    for namespace in namespaces:
        client.CoreV1Api(api).delete_namespace(namespace)


def _token_kubeconfig(plane: ControlPlane, release: Release, path: Path) -> Path:
    token = plane.kubectl_run(
        "create", "token", release.service_account, "-n", release.namespace, "--duration=1h"
    ).strip()
    return plane.token_kubeconfig(path, token, user=f"sa-{release.service_account}")


class ChartOperator:
    """``auth0-rotator run`` as the chart's ServiceAccount, with the chart's own arguments."""

    def __init__(
        self, kubeconfig: Path, release: Release, fake: FakeTenant, log_dir: Path, *args: str
    ) -> None:
        self.log = log_dir / f"chart-operator-{release.name}.log"
        OPERATOR_LOG_DIRS.append(log_dir)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": release.namespace}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "auth0_rotator.cli",
                    "run",
                    *args,
                    "--identity",
                    f"{release.name}-local",
                    "--leader-elect",
                    "--lease-name",
                    release.name,
                    "--extra-ca-file",
                    str(fake.ca_file),
                    "--restart-window",
                    "0",
                    "--liveness",
                    "",
                    "--metrics",
                    "",
                    *ALLOW_LOCAL_FAKES,
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


@pytest.fixture
def chart_operators() -> Iterator[list[ChartOperator]]:
    started: list[ChartOperator] = []
    yield started
    for op in started:
        op.stop()


def _deployment(api: client.ApiClient, namespace: str, name: str) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "registry.invalid/c:1"}]},
                },
            },
        },
    )


def _rotate_with_restart(
    api: client.ApiClient, kube: Kube, fake: FakeTenant, namespace: str, app_id: str
) -> None:
    """Create a tenant, a Deployment and a resource; force a rotation; check it all."""
    make_tenant(api, namespace, "default", M2M_ID, M2M_SECRET)
    _deployment(api, namespace, "web")
    body = a0cs_body("app", app_id, restartTargets=[{"kind": "Deployment", "name": "web"}])
    kube.create(namespace, body)
    kube.wait_ready(namespace, "app", reason="Fetched")
    kube.annotate_rotate(namespace, "app", "chart-rbac")
    status = kube.wait_ready(namespace, "app", reason="Rotated")

    def rolled() -> bool:
        current = kube.get(namespace, "app").get("status") or {}
        return any(
            c["type"] == "RolloutComplete" and c["status"] == "True"
            for c in current.get("conditions") or []
        )

    wait_for(rolled, 120, "RolloutComplete")
    data = kube.secret(namespace, "app")
    current = fake.client(app_id)
    assert data is not None and data["client_secret"] == current["client_secret"]
    assert current["secret_changes"] == 1
    template = client.AppsV1Api(api).read_namespaced_deployment("web", namespace).spec.template
    assert template.metadata.annotations[REVISION] == status["secretRevision"]
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    assert {"Rotated", "Restarted"} <= {e.reason for e in events}

    # More of the core scenarios under the same identity: drift repair, Rotate strategy.
    client.CoreV1Api(api).delete_namespaced_secret("app", namespace)
    kube.wait_ready(namespace, "app", reason="Restored")
    kube.patch(namespace, "app", {"spec": {"strategy": "Rotate"}})
    kube.annotate_rotate(namespace, "app", "chart-rbac-rotate")

    def rotated_again() -> bool:
        status = kube.get(namespace, "app").get("status") or {}
        handled = status.get("lastRotateRequest") == "chart-rbac-rotate"
        return handled and not status.get("rotation")

    wait_for(rotated_again, 60, "a Rotate-strategy rotation")
    rotations = [c for c in fake.calls(app_id) if c["endpoint"] == "rotate-secret"]
    assert [c["status"] for c in rotations] == [200]
    current = fake.client(app_id)
    data = kube.secret(namespace, "app")
    assert data is not None and data["client_secret"] == current["client_secret"]
    assert current["secret_changes"] == 2


def _no_denials(op: ChartOperator) -> None:
    log = op.text()
    assert "became leader" in log and "auth0-rotator started" in log, log[-3000:]
    denied = [line for line in log.splitlines() if any(d in line for d in DENIED)]
    assert not denied, "\n".join(denied[:20])


def _only_this_test_has_resources(api: client.ApiClient, namespace: str) -> None:
    """A cluster-wide operator must not meet other tests' resources (they may be deleting)."""

    def alone() -> bool:
        custom: Any = client.CustomObjectsApi(api)
        listed = custom.list_cluster_custom_object(
            "auth0rotator.dev", "v1alpha1", "auth0clientsecrets"
        )
        return all(i["metadata"]["namespace"] == namespace for i in listed.get("items", []))

    wait_for(alone, 120, "other tests' Auth0ClientSecrets to be gone")


@pytest.mark.reliability("least privilege: rotation with restart under the chart's ServiceAccount")
@pytest.mark.security("the operator's own token changes a workload's image or a foreign Secret")
def test_default_install_rotates_and_restarts_as_the_chart_service_account(
    control_plane: ControlPlane,
    api: client.ApiClient,
    install: Any,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    chart_operators: list[ChartOperator],
    tmp_path: Path,
    attack: dict[str, float | str],
) -> None:
    release: Release = install("--set", "admissionPolicy.enabled=true")
    deployment = client.AppsV1Api(api).read_namespaced_deployment(release.name, release.namespace)
    assert deployment.status.available_replicas == 1  # admitted, scheduled, Ready (kwok)
    args: list[str] = deployment.spec.template.spec.containers[0].args or []
    assert "--leader-elect" in args and not any(a.startswith("--namespace") for a in args)

    app_ns = _namespace(api, "h-app")
    try:
        _only_this_test_has_resources(api, app_ns)
        kubeconfig = _token_kubeconfig(control_plane, release, tmp_path / "sa.kubeconfig")
        whoami = json.loads(
            control_plane.kubectl_run(
                "--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "json"
            )
        )
        assert whoami["status"]["userInfo"]["username"] == (
            f"system:serviceaccount:{release.namespace}:{release.service_account}"
        )
        op = ChartOperator(kubeconfig, release, fake_tenant, tmp_path)  # all namespaces
        chart_operators.append(op)
        wait_for(lambda: "auth0-rotator started" in op.text(), 60, "operator start")
        _rotate_with_restart(api, kube, fake_tenant, app_ns, app_id)
        _no_denials(op)
        denied = _the_admission_policy_denies_anything_else(api, kubeconfig, app_ns)
        attack.update(
            outcome=f"denied ({denied} of {denied} attempts)",
            reason="ValidatingAdmissionPolicy (admissionPolicy.enabled)",
            auth0_writes=0,
        )
    finally:
        client.CoreV1Api(api).delete_namespace(app_ns)


def template(**parts: Any) -> dict[str, Any]:
    """A patch of a workload's pod template."""
    return {"spec": {"template": parts}}


def _the_admission_policy_denies_anything_else(
    api: client.ApiClient, kubeconfig: Path, namespace: str
) -> int:
    """With admissionPolicy.enabled the operator's own identity can do nothing but its job.

    Returns how many attempts were denied (all of them, or the test fails).
    """
    client.CoreV1Api(api).create_namespaced_secret(
        namespace, {"metadata": {"name": "not-managed"}, "stringData": {"k": "v"}}
    )
    sa_api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        apps, core = client.AppsV1Api(sa_api), client.CoreV1Api(sa_api)
        attempts: dict[str, Any] = {
            "change a workload's image": lambda: apps.patch_namespaced_deployment(
                "web",
                namespace,
                template(spec={"containers": [{"name": "c", "image": "registry.invalid/evil:1"}]}),
            ),
            "add another pod-template annotation": lambda: apps.patch_namespaced_deployment(
                "web", namespace, template(metadata={"annotations": {"other": "x"}})
            ),
            "scale a workload": lambda: apps.patch_namespaced_deployment(
                "web", namespace, {"spec": {"replicas": 5}}
            ),
            "create an unmanaged Secret": lambda: core.create_namespaced_secret(
                namespace, {"metadata": {"name": "planted"}, "stringData": {"k": "v"}}
            ),
            "change an unmanaged Secret": lambda: core.patch_namespaced_secret(
                "not-managed", namespace, {"stringData": {"k": "changed"}}
            ),
            "delete an unmanaged Secret": lambda: core.delete_namespaced_secret(
                "not-managed", namespace
            ),
        }
        for what, attempt in attempts.items():
            with pytest.raises(client.ApiException) as denied:
                attempt()
            assert denied.value.status in (403, 422), what
            assert "ValidatingAdmissionPolicy" in str(denied.value.body), what
        # What the operator does is still allowed for it: its restart annotation.
        apps.patch_namespaced_deployment(
            "web",
            namespace,
            template(metadata={"annotations": {REVISION: "by-the-operator-identity"}}),
        )
        return len(attempts)
    finally:
        sa_api.close()


@pytest.mark.reliability("namespace isolation: watchNamespaces identity denied other Secrets")
def test_namespaced_install_works_in_its_namespace_and_is_denied_elsewhere(
    control_plane: ControlPlane,
    api: client.ApiClient,
    install: Any,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    chart_operators: list[ChartOperator],
    tmp_path: Path,
) -> None:
    team, other = _namespace(api, "h-team"), _namespace(api, "h-other")
    try:
        release: Release = install("--set-json", f'watchNamespaces=["{team}"]')
        kubeconfig = _token_kubeconfig(control_plane, release, tmp_path / "sa.kubeconfig")
        op = ChartOperator(kubeconfig, release, fake_tenant, tmp_path, "--namespace", team)
        chart_operators.append(op)
        wait_for(lambda: "auth0-rotator started" in op.text(), 60, "operator start")
        _rotate_with_restart(api, kube, fake_tenant, team, app_id)
        _no_denials(op)

        sa_api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            core = client.CoreV1Api(sa_api)
            client.CoreV1Api(api).create_namespaced_secret(
                other, {"metadata": {"name": "not-yours"}, "stringData": {"k": "v"}}
            )
            attempts: dict[str, Any] = {
                "read in another namespace": lambda: core.read_namespaced_secret(
                    "not-yours", other
                ),
                "list in another namespace": lambda: core.list_namespaced_secret(other),
                "list in all namespaces": lambda: core.list_secret_for_all_namespaces(),
                "create in another namespace": lambda: core.create_namespaced_secret(
                    other, {"metadata": {"name": "planted"}}
                ),
            }
            for what, attempt in attempts.items():
                with pytest.raises(client.ApiException) as denied:
                    attempt()
                assert denied.value.status == 403, what
            assert core.read_namespaced_secret("app", team).metadata.name == "app"  # allowed
        finally:
            sa_api.close()
    finally:
        for namespace in (team, other):
            client.CoreV1Api(api).delete_namespace(namespace)


RBAC = "rbac.authorization.k8s.io"


def _allowed(api: client.ApiClient, user: str, verb: str, resource: str, namespace: str) -> bool:
    review = client.AuthorizationV1Api(api).create_subject_access_review(
        {
            "spec": {
                "user": user,
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": "auth0rotator.dev",
                    "resource": resource,
                },
            }
        }
    )
    return bool(review.status.allowed)


def test_team_roles_reach_namespace_editors_and_viewers_and_no_further(
    control_plane: ControlPlane, api: client.ApiClient, install: Any, tmp_path: Path, app_id: str
) -> None:
    """``rbac.teamRoles``: Kubernetes' own edit/view roles, bound in one namespace, suffice."""
    install()
    team, other = _namespace(api, "h-team"), _namespace(api, "h-other")
    try:
        for user, role in (("alice", "edit"), ("victor", "view"), ("ada", "admin")):
            client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
                team,
                {
                    "metadata": {"name": user},
                    "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
                    "subjects": [{"kind": "User", "name": user, "apiGroup": RBAC}],
                },
            )
        # The aggregation controller copies the rules into edit/view/admin.
        wait_for(
            lambda: _allowed(api, "alice", "create", "auth0clientsecrets", team), 60, "aggregation"
        )
        assert _allowed(api, "victor", "list", "auth0clientsecrets", team)
        assert not _allowed(api, "victor", "create", "auth0clientsecrets", team)
        for user in ("alice", "ada"):  # tenants hold credentials: rbac.teamTenants is off
            assert _allowed(api, user, "get", "auth0tenants", team)
            assert not _allowed(api, user, "create", "auth0tenants", team)
        for user in ("alice", "victor"):
            assert not _allowed(api, user, "list", "auth0clientsecrets", other)
            assert not _allowed(api, user, "list", "clusterauth0tenants", "")
        # For real, as alice: her namespace yes, another no.
        alice = control_plane.user_kubeconfig(tmp_path / "alice", "alice", ())
        body = yaml.safe_dump(a0cs_body("app", app_id))
        as_alice = [str(control_plane.kubectl), "--kubeconfig", str(alice), "create", "-f", "-"]
        created = subprocess.run(
            [*as_alice, "-n", team], input=body, capture_output=True, text=True, check=False
        )
        assert created.returncode == 0, created.stderr
        refused = subprocess.run(
            [*as_alice, "-n", other], input=body, capture_output=True, text=True, check=False
        )
        assert refused.returncode != 0 and "forbidden" in refused.stderr
    finally:
        for namespace in (team, other):
            client.CoreV1Api(api).delete_namespace(namespace)
