"""The Helm chart without a cluster: lint, rendered objects, RBAC and the values schema.

Every test runs ``helm lint`` or ``helm template`` (offline, fast) and reads
what it renders. RBAC is read the way the API server's authorizer reads it:
which verbs the operator's ServiceAccount holds on which resource in which
namespace, through the rendered bindings. So a test fails when a permission
the operator needs is missing *and* when the chart grants anything more.
"""

from __future__ import annotations

import copy
import filecmp
import json
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import auth0_rotator
from auth0_rotator.cli import build_parser
from auth0_rotator.endpoints import parse_listen, parse_url
from auth0_rotator.leader import LeaseConfig

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "auth0-rotator"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
RELEASE = "auth0-rotator"
NAMESPACE = "auth0-system"
FULLNAME = "auth0-rotator"
"""The release name contains the chart name, so it is also every object's name."""
SERVICE_ACCOUNT = (NAMESPACE, FULLNAME)
WATCHED = ("team-a", "team-b")

Manifest = dict[str, Any]
Grant = tuple[str, str, str, str | None]
"""(apiGroup, resource, verb, resourceName or None for any name)."""

GROUP = "auth0rotator.dev"
NAMESPACED_NEEDS: frozenset[Grant] = frozenset(
    {
        (GROUP, r, v, None)
        for r in ("auth0clientsecrets", "auth0tenants")
        for v in ("get", "list", "watch")
    }
    | {(GROUP, f"{r}/status", "patch", None) for r in ("auth0clientsecrets", "auth0tenants")}
    | {("", "secrets", v, None) for v in ("get", "list", "watch", "create", "patch", "delete")}
    | {("", "events", v, None) for v in ("create", "patch")}
    | {
        ("apps", r, v, None)
        for r in ("deployments", "statefulsets", "daemonsets")
        for v in ("get", "list", "watch", "patch")
    }
)
"""What the operator does inside a namespace it serves (see the chart README)."""

CLUSTER_NEEDS: frozenset[Grant] = frozenset(
    {(GROUP, "clusterauth0tenants", v, None) for v in ("get", "list", "watch")}
    | {(GROUP, "clusterauth0tenants/status", "patch", None)}
    | {("", "namespaces", "get", None)}
)
"""Cluster-scoped needs: ClusterAuth0Tenants and namespace labels."""

LEASE_NEEDS: frozenset[Grant] = frozenset(
    {
        ("coordination.k8s.io", "leases", "create", None),
        ("coordination.k8s.io", "leases", "get", FULLNAME),
        ("coordination.k8s.io", "leases", "update", FULLNAME),
    }
)
"""Leader election, in the release namespace only, on the one Lease."""

CREDENTIALS_NEEDS: frozenset[Grant] = frozenset({("", "secrets", "get", None)})
"""Reading ClusterAuth0Tenant credentials in the release namespace when it is not watched."""

KUBERNETES_TYPED = ("global", "resources", "podSecurityContext", "securityContext", "affinity")
"""Schema properties values.yaml need not spell out: Helm's ``global`` and Kubernetes types."""


# -- running helm ------------------------------------------------------------------------------


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=False)


@cache
def _render_text(helm: Path, *args: str) -> str:
    out = _helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def render(helm: Path, *args: str) -> list[Manifest]:
    """The objects ``helm template`` renders with extra ``args`` (values files, --set)."""
    docs = yaml.safe_load_all(_render_text(helm, *args))
    return [doc for doc in docs if doc]


def render_error(helm: Path, *args: str) -> str:
    """``helm template``'s error output; fails the test if rendering succeeds."""
    out = _helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert out.returncode != 0, f"helm template {' '.join(args)} unexpectedly rendered"
    return out.stderr


def ci(name: str) -> tuple[str, str]:
    """``-f`` arguments for a values file in the chart's ``ci/`` directory."""
    return ("--values", str(CHART / "ci" / f"{name}-values.yaml"))


@pytest.fixture(scope="module")
def default_objects(helm: Path) -> list[Manifest]:
    return render(helm, *ci("default"))


@pytest.fixture(scope="module")
def namespaced_objects(helm: Path) -> list[Manifest]:
    return render(helm, *ci("namespaced"))


@pytest.fixture(scope="module")
def ha_objects(helm: Path) -> list[Manifest]:
    return render(helm, *ci("ha"))


# -- reading rendered objects ------------------------------------------------------------------


def objects_of(objects: list[Manifest], kind: str) -> list[Manifest]:
    """Every rendered object of ``kind``."""
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[Manifest], kind: str) -> Manifest:
    """The single rendered object of ``kind``."""
    found = objects_of(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def operator_container(objects: list[Manifest]) -> Manifest:
    """The operator container of the Deployment."""
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    container: Manifest = containers[0]
    return container


def flag_values(args: list[str], flag: str) -> list[str]:
    """Values given to ``flag`` (``--flag=value`` or ``--flag value``); ``""`` for a bare flag."""
    values = []
    for index, arg in enumerate(args):
        if arg.startswith(f"{flag}="):
            values.append(arg.partition("=")[2])
        elif arg == flag:
            following = args[index + 1] if index + 1 < len(args) else ""
            values.append("" if following.startswith("-") else following)
    return values


def grants(objects: list[Manifest], namespace: str | None) -> set[Grant]:
    """What the operator's ServiceAccount may do in ``namespace`` (``None``: cluster scope).

    ClusterRoleBindings count everywhere; RoleBindings only in their own
    namespace. A binding to a role that was not rendered fails the test.
    """
    roles: dict[tuple[str, str | None, str], list[Manifest]] = {}
    for obj in objects:
        if obj["kind"] in ("Role", "ClusterRole"):
            key = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
            roles[key] = obj.get("rules") or []
    granted: set[Grant] = set()
    for obj in objects:
        subjects = obj.get("subjects") or []
        if not any(
            s["kind"] == "ServiceAccount" and (s.get("namespace"), s["name"]) == SERVICE_ACCOUNT
            for s in subjects
        ):
            continue
        ref = obj["roleRef"]
        if obj["kind"] == "ClusterRoleBinding":
            rules = roles[("ClusterRole", None, ref["name"])]
        elif obj["kind"] == "RoleBinding" and obj["metadata"]["namespace"] == namespace:
            scope = namespace if ref["kind"] == "Role" else None
            rules = roles[(ref["kind"], scope, ref["name"])]
        else:
            continue
        for rule in rules:
            for group in rule.get("apiGroups") or []:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        for name in rule.get("resourceNames") or [None]:
                            granted.add((group, resource, verb, name))
    return granted


AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def team_roles(objects: list[Manifest]) -> dict[str, Manifest]:
    """The ClusterRoles aggregated into Kubernetes' view/edit/admin, by name."""
    return {
        o["metadata"]["name"]: o
        for o in objects_of(objects, "ClusterRole")
        if any(k.startswith(AGGREGATE) for k in o["metadata"].get("labels") or {})
    }


def operator_cluster_role(objects: list[Manifest]) -> Manifest:
    """The operator's own ClusterRole (not a team role)."""
    (role,) = [
        o
        for o in objects_of(objects, "ClusterRole")
        if o["metadata"]["name"] not in team_roles(objects)
    ]
    return role


def all_rules(objects: list[Manifest]) -> Iterator[Manifest]:
    """Every rule of every rendered Role and ClusterRole."""
    for obj in objects:
        if obj["kind"] in ("Role", "ClusterRole"):
            yield from obj.get("rules") or []


# -- the chart's files ---------------------------------------------------------------------------


def test_chart_crds_are_byte_identical_to_the_top_level_crds() -> None:
    top, chart = REPO / "crds", CHART / "crds"
    names = sorted(p.name for p in top.iterdir())
    assert names, "no CRDs in crds/"
    assert sorted(p.name for p in chart.iterdir()) == names
    _match, mismatch, errors = filecmp.cmpfiles(top, chart, names, shallow=False)
    assert (mismatch, errors) == ([], []), "copy crds/ into charts/auth0-rotator/crds/ again"


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "auth0-rotator"
    assert chart["appVersion"] == auth0_rotator.__version__


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda p: p.name if p else "no-values")
def test_helm_lint_strict_passes(helm: Path, values: Path | None) -> None:
    args = ["--values", str(values)] if values else []
    out = _helm(helm, "lint", "--strict", str(CHART), *args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


def test_ci_values_files_cover_the_documented_modes() -> None:
    assert [p.name for p in CI_VALUES] == [
        "default-values.yaml",
        "ha-values.yaml",
        "namespaced-values.yaml",
    ]


# -- the Deployment ----------------------------------------------------------------------------


def test_default_mode_watches_every_namespace(default_objects: list[Manifest]) -> None:
    args = operator_container(default_objects)["args"]
    assert args[0] == "run"
    assert flag_values(args, "--namespace") == []


def test_namespaced_mode_passes_each_watched_namespace(namespaced_objects: list[Manifest]) -> None:
    args = operator_container(namespaced_objects)["args"]
    assert flag_values(args, "--namespace") == list(WATCHED)


def test_operator_runs_behind_the_lease_it_may_update(default_objects: list[Manifest]) -> None:
    container = operator_container(default_objects)
    args = container["args"]
    assert flag_values(args, "--leader-elect") == [""]
    assert flag_values(args, "--lease-name") == [FULLNAME]
    assert flag_values(args, "--lease-namespace") == ["$(POD_NAMESPACE)"]
    assert flag_values(args, "--identity") == ["$(POD_NAME)"]
    assert flag_values(args, "--lease-duration") == ["15"]
    assert flag_values(args, "--renew-deadline") == ["10"]
    assert flag_values(args, "--retry-period") == ["2"]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}) for e in container["env"]}
    assert env["POD_NAME"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["fieldPath"] == "metadata.namespace"
    assert grants(default_objects, NAMESPACE) >= LEASE_NEEDS


@pytest.mark.parametrize(
    "settings",
    [
        ci("default"),
        ci("namespaced"),
        ci("ha"),
        ("--set", "metrics.enabled=false,leaderElection.enabled=false,verbose=true"),
        ("--set", "extraCA.configMapName=fake-auth0-ca,logFormat=human"),
    ],
    ids=["default", "namespaced", "ha", "no-metrics-no-lease", "extra-ca"],
)
def test_operator_accepts_the_rendered_command_line(helm: Path, settings: tuple[str, ...]) -> None:
    container = operator_container(render(helm, *settings))
    pod = {"POD_NAME": "auth0-rotator-7d9f-abcde", "POD_NAMESPACE": NAMESPACE}
    assert {e["name"] for e in container["env"]} >= set(pod)
    # The kubelet expands $(VAR) from the container's environment.
    argv = [re.sub(r"\$\((\w+)\)", lambda m: pod[m.group(1)], a) for a in container["args"]]
    args = build_parser().parse_args(argv)  # a flag the CLI lacks exits here
    assert args.command == "run"
    assert args.identity == pod["POD_NAME"]
    assert parse_url(args.liveness).port == 8080
    if args.metrics:
        assert parse_listen(args.metrics).port == 9090
    if args.leader_elect:
        lease = LeaseConfig(
            name=args.lease_name,
            namespace=args.lease_namespace,
            identity=args.identity,
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
        )
        assert (lease.name, lease.namespace) == (FULLNAME, NAMESPACE)


def test_rolling_upgrades_start_the_new_pod_as_a_standby_first(
    default_objects: list[Manifest],
) -> None:
    strategy = one(default_objects, "Deployment")["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }


def test_without_leader_election_pods_never_overlap_and_no_lease_is_granted(helm: Path) -> None:
    objects = render(helm, "--set", "leaderElection.enabled=false")
    assert one(objects, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    args = operator_container(objects)["args"]
    assert not [a for a in args if a.startswith("--lease") or a == "--leader-elect"]
    assert not {g for g in grants(objects, NAMESPACE) if g[1] == "leases"}


def test_several_replicas_without_leader_election_are_refused(helm: Path) -> None:
    error = render_error(helm, "--set", "replicaCount=2", "--set", "leaderElection.enabled=false")
    assert "leaderElection.enabled" in error


@pytest.mark.parametrize(
    "setting",
    [
        "leaderElection.renewDeadlineSeconds=15",  # not below the lease duration
        "leaderElection.retryPeriodSeconds=9",  # renew deadline not above 1.2 x retry period
    ],
)
def test_inconsistent_lease_timings_are_refused(helm: Path, setting: str) -> None:
    assert "leaderElection." in render_error(helm, "--set", setting)


def test_operator_settings_reach_the_command_line(helm: Path) -> None:
    args = operator_container(
        render(
            helm,
            "--set",
            "operator.verifyTimeoutSeconds=90",
            # --set keeps 2.5 a string (helm converts only integers and booleans).
            "--set-json",
            "operator.restartWindowSeconds=2.5",
            "--set",
            "operator.rolloutDeadlineSeconds=120,operator.workers=8",
            "--set",
            "logFormat=human,verbose=true",
            "--set",
            "extraArgs[0]=--some-flag=with space",
        )
    )["args"]
    assert flag_values(args, "--verify-timeout") == ["90"]
    assert flag_values(args, "--restart-window") == ["2.5"]
    assert flag_values(args, "--rollout-deadline") == ["120"]
    assert flag_values(args, "--workers") == ["8"]
    assert flag_values(args, "--log-format") == ["human"]
    assert flag_values(args, "--verbose") == [""]
    assert args[-1] == "--some-flag=with space"


def test_credentials_go_to_auth0_domains_unless_the_values_say_otherwise(helm: Path) -> None:
    args = operator_container(render(helm))["args"]
    assert flag_values(args, "--allowed-domain") == ["*.auth0.com"]
    assert flag_values(args, "--auth0-deadline") == ["30"]
    assert flag_values(args, "--reconcile-deadline") == ["300"]
    custom = operator_container(
        render(helm, "--set-json", 'allowedDomains=["login.example.com","fake.auth0-fake.svc"]')
    )["args"]
    assert flag_values(custom, "--allowed-domain") == ["login.example.com", "fake.auth0-fake.svc"]
    error = render_error(helm, "--set-json", 'allowedDomains=["https://login.example.com"]')
    assert "allowedDomains" in error


def test_the_admission_policy_is_opt_in_and_binds_the_operator_identity(helm: Path) -> None:
    kinds = {o["kind"] for o in render(helm)}
    assert "ValidatingAdmissionPolicy" not in kinds
    objects = render(helm, "--set", "admissionPolicy.enabled=true")
    policy = one(objects, "ValidatingAdmissionPolicy")
    binding = one(objects, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    (condition,) = policy["spec"]["matchConditions"]
    user = f"system:serviceaccount:{SERVICE_ACCOUNT[0]}:{SERVICE_ACCOUNT[1]}"
    assert condition["expression"] == f'request.userInfo.username == "{user}"'


def _readme_rbac_rows() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every row of the chart README's RBAC table."""
    lines = (CHART / "README.md").read_text().split("## RBAC", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| API group"))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    table = lines[start + 2 : end]
    rows: set[tuple[str, str, str]] = set()
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        group = cells[0].strip("`").replace('""', "")
        resources = re.findall(r"`([a-z0-9/]+)`", cells[1].split("(")[0])
        for resource in resources:
            for verb in (v.strip() for v in cells[2].split(",")):
                rows.add((group, resource, verb))
    return rows


def test_the_readme_rbac_table_is_the_charts_rbac(default_objects: list[Manifest]) -> None:
    granted = {
        (group, resource, verb) for group, resource, verb, _ in grants(default_objects, NAMESPACE)
    }
    assert _readme_rbac_rows() == granted


def test_liveness_probe_checks_the_endpoint_the_operator_serves(
    default_objects: list[Manifest],
) -> None:
    container = operator_container(default_objects)
    assert flag_values(container["args"], "--liveness") == ["http://0.0.0.0:8080/healthz"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probe = container["livenessProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": "health"}
    assert ports["health"] == 8080


def test_metrics_are_served_and_exposed_by_a_service(default_objects: list[Manifest]) -> None:
    container = operator_container(default_objects)
    assert flag_values(container["args"], "--metrics") == ["0.0.0.0:9090"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == 9090
    service = one(default_objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = one(default_objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not objects_of(default_objects, "ServiceMonitor")


def test_disabled_metrics_pass_an_empty_address_and_expose_nothing(helm: Path) -> None:
    objects = render(helm, "--set", "metrics.enabled=false")
    container = operator_container(objects)
    assert flag_values(container["args"], "--metrics") == [""]
    assert "metrics" not in {p["name"] for p in container["ports"]}
    assert not objects_of(objects, "Service")


def test_a_service_monitor_without_metrics_is_refused(helm: Path) -> None:
    error = render_error(
        helm, "--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"
    )
    assert "metrics.enabled" in error


def test_ha_values_run_two_replicas_with_a_pdb_and_a_service_monitor(
    ha_objects: list[Manifest],
) -> None:
    deployment = one(ha_objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdb = one(ha_objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    monitor = one(ha_objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    # Per-resource series keep their own namespace label (the alerts name the resource).
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    service_labels = one(ha_objects, "Service")["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["labelSelector"]["matchLabels"].items() <= pod_labels.items()


def test_no_pdb_by_default(default_objects: list[Manifest]) -> None:
    assert not objects_of(default_objects, "PodDisruptionBudget")


def test_pod_meets_the_restricted_pod_security_standard(default_objects: list[Manifest]) -> None:
    pod = one(default_objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = operator_container(default_objects)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is True


def test_tmp_is_a_writable_empty_dir(default_objects: list[Manifest]) -> None:
    pod = one(default_objects, "Deployment")["spec"]["template"]["spec"]
    mounts = {
        m["mountPath"]: m["name"] for m in operator_container(default_objects)["volumeMounts"]
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 - a mount path, not a file


def test_extra_ca_config_map_is_mounted_read_only_and_trusted(helm: Path) -> None:
    objects = render(helm, "--set", "extraCA.configMapName=fake-auth0-ca,extraCA.key=bundle.pem")
    container = operator_container(objects)
    assert flag_values(container["args"], "--extra-ca-file") == ["/etc/auth0-rotator/ca/bundle.pem"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/auth0-rotator/ca")
    assert mount["readOnly"] is True
    volume = next(
        v
        for v in one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == mount["name"]
    )
    assert volume["configMap"]["name"] == "fake-auth0-ca"


def test_no_extra_ca_by_default(default_objects: list[Manifest]) -> None:
    assert flag_values(operator_container(default_objects)["args"], "--extra-ca-file") == []


def test_pod_labels_never_replace_the_selector_labels(helm: Path) -> None:
    objects = render(
        helm, "--set", "podLabels.team=payments", "--set", "podLabels.app\\.kubernetes\\.io/name=x"
    )
    deployment = one(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["team"] == "payments"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_image_tag_defaults_to_the_app_version(default_objects: list[Manifest]) -> None:
    image = operator_container(default_objects)["image"]
    assert image == f"ghcr.io/auth0-rotator/auth0-rotator:{auth0_rotator.__version__}"


def test_every_object_lives_in_the_release_namespace_unless_watched_or_cluster_scoped(
    namespaced_objects: list[Manifest],
) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for obj in namespaced_objects:
        where = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert where is None
        else:
            assert where in (NAMESPACE, *WATCHED), obj["metadata"]


def test_the_service_account_of_the_pod_is_the_one_bound(default_objects: list[Manifest]) -> None:
    pod = one(default_objects, "Deployment")["spec"]["template"]["spec"]
    account = one(default_objects, "ServiceAccount")["metadata"]
    assert (account["namespace"], account["name"]) == SERVICE_ACCOUNT
    assert pod["serviceAccountName"] == account["name"]


# -- RBAC ---------------------------------------------------------------------------------------


def test_default_mode_grants_exactly_what_the_operator_needs(
    default_objects: list[Manifest],
) -> None:
    everywhere = NAMESPACED_NEEDS | CLUSTER_NEEDS
    assert grants(default_objects, None) == everywhere
    assert grants(default_objects, "team-z") == everywhere
    assert grants(default_objects, NAMESPACE) == everywhere | LEASE_NEEDS


def test_default_mode_cluster_role_manages_secrets(default_objects: list[Manifest]) -> None:
    rules = operator_cluster_role(default_objects)["rules"]
    secret_verbs = {v for r in rules if "secrets" in r["resources"] for v in r["verbs"]}
    assert secret_verbs == {"get", "list", "watch", "create", "patch", "delete"}


def test_namespaced_mode_grants_exactly_what_the_operator_needs(
    namespaced_objects: list[Manifest],
) -> None:
    assert grants(namespaced_objects, None) == CLUSTER_NEEDS
    for namespace in WATCHED:
        assert grants(namespaced_objects, namespace) == CLUSTER_NEEDS | NAMESPACED_NEEDS
    assert grants(namespaced_objects, "team-c") == CLUSTER_NEEDS
    assert grants(namespaced_objects, NAMESPACE) == CLUSTER_NEEDS | LEASE_NEEDS | CREDENTIALS_NEEDS


def test_namespaced_mode_cluster_role_has_no_secrets_rule(
    namespaced_objects: list[Manifest],
) -> None:
    rules = operator_cluster_role(namespaced_objects)["rules"]
    assert not [r for r in rules if "secrets" in r["resources"]]


def test_namespaced_mode_binds_a_role_in_each_watched_namespace(
    namespaced_objects: list[Manifest],
) -> None:
    bound = {
        b["metadata"]["namespace"]
        for b in objects_of(namespaced_objects, "RoleBinding")
        if b["roleRef"]
        == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": FULLNAME}
    }
    assert bound == set(WATCHED)


def test_watching_the_release_namespace_needs_no_separate_credentials_role(helm: Path) -> None:
    objects = render(helm, "--set", f"watchNamespaces={{{NAMESPACE},team-a}}")
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), "duplicate objects"
    assert not [k for k in keys if k[2].endswith("-tenant-credentials")]
    assert grants(objects, NAMESPACE) == CLUSTER_NEEDS | NAMESPACED_NEEDS | LEASE_NEEDS


@pytest.mark.parametrize("mode", ["default", "namespaced", "ha"])
def test_no_rule_uses_wildcards(helm: Path, mode: str) -> None:
    for rule in all_rules(render(helm, *ci(mode))):
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in (rule.get(field) or []), rule
        assert not [r for r in rule["resources"] if r.endswith("/*")], rule


def test_team_roles_read_and_write_only_the_operators_resources(helm: Path) -> None:
    roles = team_roles(render(helm))
    aggregated = {
        name: {
            k.removeprefix(AGGREGATE) for k in r["metadata"]["labels"] if k.startswith(AGGREGATE)
        }
        for name, r in roles.items()
    }
    assert aggregated == {
        f"{RELEASE}-team-viewer": {"view", "edit", "admin"},
        f"{RELEASE}-team-editor": {"edit", "admin"},
    }
    for role in roles.values():
        for rule in role["rules"]:
            assert rule["apiGroups"] == ["auth0rotator.dev"], rule  # never Secrets
            assert not [r for r in rule["resources"] if r.endswith("/status")], rule
            assert "clusterauth0tenants" not in rule["resources"]
    editor = roles[f"{RELEASE}-team-editor"]["rules"]
    assert [r["resources"] for r in editor] == [["auth0clientsecrets"]]
    with_tenants = team_roles(render(helm, "--set", "rbac.teamTenants=true"))
    admin = with_tenants[f"{RELEASE}-team-tenant-admin"]
    assert admin["metadata"]["labels"][f"{AGGREGATE}admin"] == "true"
    assert f"{AGGREGATE}edit" not in admin["metadata"]["labels"]
    assert not team_roles(render(helm, "--set", "rbac.teamRoles=false"))


def test_rbac_can_be_left_to_the_cluster_admin(helm: Path) -> None:
    kinds = {o["kind"] for o in render(helm, "--set", "rbac.create=false")}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    assert "Deployment" in kinds


# -- values and their schema ---------------------------------------------------------------------


def _schema() -> Manifest:
    schema: Manifest = json.loads((CHART / "values.schema.json").read_text())
    return schema


def _defaults() -> Manifest:
    values: Manifest = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def _leaf_paths(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from _leaf_paths(value, (*prefix, key))
    else:
        yield prefix


def _schema_nodes(
    node: Manifest, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Manifest]]:
    """Every (sub)schema with its value path: ``[]`` array items, ``*`` map values, ``|`` anyOf."""
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from _schema_nodes(child, (*path, key))
    if isinstance(node.get("items"), dict):
        yield from _schema_nodes(node["items"], (*path, "[]"))
    if isinstance(node.get("additionalProperties"), dict):
        yield from _schema_nodes(node["additionalProperties"], (*path, "*"))
    for alternative in node.get("anyOf") or []:
        yield from _schema_nodes(alternative, (*path, "|"))


def _schema_at(schema: Manifest, path: tuple[str, ...]) -> Manifest | None:
    node = schema
    for key in path:
        properties = node.get("properties") or {}
        if key in properties:
            node = properties[key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]  # a free-form map, e.g. resources.requests
        else:
            return None
    return node


def _merged(base: Any, override: Any) -> Any:
    """Helm's merge of a values file over the defaults: maps merge, everything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        result = copy.deepcopy(base)
        for key, value in override.items():
            result[key] = _merged(base.get(key), value)
        return result
    return copy.deepcopy(override)


def test_schema_is_a_valid_draft_07_schema() -> None:
    schema = _schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)


def test_every_value_is_described_in_the_schema() -> None:
    schema = _schema()
    for path in _leaf_paths(_defaults()):
        assert _schema_at(schema, path) is not None, (
            f"{'.'.join(path)} is not in values.schema.json"
        )
    for path, node in _schema_nodes(schema):
        if path and path[-1] not in ("[]", "*", "|"):
            assert node.get("description"), f"{'.'.join(path)} has no description"


def test_every_schema_property_has_a_default_in_values_yaml() -> None:
    defaults = _defaults()
    for path, _node in _schema_nodes(_schema()):
        if not path or path[0] in KUBERNETES_TYPED or {"[]", "*", "|"} & set(path):
            continue
        value: Any = defaults
        for key in path:
            assert isinstance(value, dict) and key in value, (
                f"{'.'.join(path)} missing in values.yaml"
            )
            value = value[key]


def test_every_object_level_of_the_schema_refuses_unknown_keys() -> None:
    for path, node in _schema_nodes(_schema()):
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{'.'.join(path) or 'top level'}"


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_ci_values_pass_the_schema(values: Path) -> None:
    validator = jsonschema.Draft7Validator(_schema())
    given = yaml.safe_load(values.read_text()) or {}
    for candidate in (given, _merged(_defaults(), given)):
        errors = [e.message for e in validator.iter_errors(candidate)]
        assert errors == [], values.name


def test_default_values_pass_the_schema() -> None:
    errors = [e.message for e in jsonschema.Draft7Validator(_schema()).iter_errors(_defaults())]
    assert errors == []


@pytest.mark.parametrize(
    "typo",
    [
        {"image": {"tg": "v1"}},
        {"metrics": {"serviceMonitor": {"enable": True}}},
        {"leaderElection": {"leaseDuration": 15}},
        {"podSecurityContext": {"runAsNonRot": True}},
        {"securityContext": {"capabilities": {"dorp": ["ALL"]}}},
        {"resources": {"limit": {"memory": "1Gi"}}},
        {"watchNamespaces": ["Team_A"]},
        {"watchNamespaces": ["team-a", "team-a"]},
        {"logFormat": "text"},
        {"pdb": {"maxUnavailable": "half"}},
        {"operator": {"workers": 0}},
        {"podLabels": {"team": 1}},
    ],
    ids=lambda typo: json.dumps(typo),
)
def test_schema_refuses_mistakes(typo: Manifest) -> None:
    assert list(jsonschema.Draft7Validator(_schema()).iter_errors(typo))


def test_helm_refuses_a_wrongly_typed_value(helm: Path) -> None:
    error = render_error(helm, "--set", "replicaCount=two")
    assert "schema" in error
    assert "replicaCount" in error


def test_helm_refuses_an_unknown_top_level_key(helm: Path) -> None:
    error = render_error(helm, "--set", "bogus=1")
    assert "schema" in error
    assert "bogus" in error
