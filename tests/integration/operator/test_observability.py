"""What on-call people see: metrics, liveness, JSON logs, Events, and kubectl's views."""

from __future__ import annotations

import json
import re
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from auth0_rotator.logs import HumanFormatter
from auth0_rotator.schedule import parse_time
from auth0_rotator_dev.devcluster import ControlPlane
from tests.chart.test_alert_rules import render_rule, run_promtool, write_rules
from tests.conftest import REPO, _kube_bin_dir
from tests.integration.operator.conftest import RunningOperator
from tests.integration.operator.harness import (
    DOMAIN,
    FakeTenant,
    Kube,
    OperatorProcess,
    a0cs_body,
    make_tenant,
    wait_for,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
JOB = "auth0-rotator-metrics"
"""The job label the chart's ServiceMonitor gives the series (release auth0-rotator)."""
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def scrape(url: str) -> Samples:
    """Every sample of a Prometheus text exposition: (name, labels) -> value."""
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
        text = response.read().decode()
    samples: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    """Sum of the samples of ``metric`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, pairs), v in samples.items() if n == metric and want <= pairs)


def test_metrics_follow_rotations_failures_and_resources(
    operator: RunningOperator, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    before = scrape(operator.metrics_url)
    kube.create(tenant_ns, a0cs_body("app", app_id, schedule="0 3 * * *"))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "metrics")
    status = kube.wait_ready(tenant_ns, "app", reason="Rotated")
    kube.create(tenant_ns, a0cs_body("missing", "no-such-client"))
    kube.wait_reason(tenant_ns, "missing", "ClientNotFound")

    def settled() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        now = scrape(operator.metrics_url)
        seen = value(now, "auth0_rotator_last_rotation_timestamp_seconds", name="app")
        return (
            now if seen and value(now, "auth0_rotator_resources", ready_reason="Rotated") else None
        )

    after = wait_for(settled, 15, "metrics of the rotated resource")
    rotated = ("auth0_rotator_rotations_total", {"trigger": "annotation", "result": "succeeded"})
    assert value(after, rotated[0], **rotated[1]) == value(before, rotated[0], **rotated[1]) + 1
    count = "auth0_rotator_rotation_duration_seconds_count"
    assert (
        value(after, count, trigger="annotation") == value(before, count, trigger="annotation") + 1
    )
    failures = ("auth0_rotator_failures_total", {"reason": "ClientNotFound"})
    assert value(after, failures[0], **failures[1]) >= value(before, failures[0], **failures[1]) + 1
    # The write (200), and its verification: a token request with the new secret (the
    # fake answers 403 once it authenticated: the client has no grant for the audience).
    for endpoint, code in (("patch-client", "200"), ("verify-token", "403")):
        key = {"tenant": DOMAIN, "endpoint": endpoint, "code": code}
        assert value(after, "auth0_rotator_auth0_requests_total", **key) > value(
            before, "auth0_rotator_auth0_requests_total", **key
        ), endpoint
    assert value(after, "auth0_rotator_auth0_requests_total", code="404") > 0  # the missing client
    token = {"tenant": DOMAIN, "endpoint": "token", "code": "200"}  # the operator's own token
    assert value(after, "auth0_rotator_auth0_requests_total", **token) > 0
    assert value(after, "auth0_rotator_event_loop_tasks") > 1  # kopf's own tasks at least
    assert value(after, "auth0_rotator_auth0_rate_limit_remaining", tenant=DOMAIN) >= 0
    assert ("auth0_rotator_auth0_rate_limit_remaining", frozenset({("tenant", DOMAIN)})) in after

    ref = {"namespace": tenant_ns, "name": "app"}
    last = value(after, "auth0_rotator_last_rotation_timestamp_seconds", **ref)
    rotated_at = parse_time(status["lastRotationTime"])
    next_at = parse_time(status["nextRotationTime"])
    assert rotated_at is not None and next_at is not None
    assert last == rotated_at.timestamp()
    assert value(after, "auth0_rotator_next_rotation_timestamp_seconds", **ref) == (
        next_at.timestamp()
    )
    assert value(after, "auth0_rotator_secret_age_seconds", **ref) >= 0
    assert value(after, "auth0_rotator_leader") == 1

    kube.custom.delete_namespaced_custom_object(
        "auth0rotator.dev", "v1alpha1", tenant_ns, "auth0clientsecrets", "app"
    )

    def gone() -> bool:
        now = scrape(operator.metrics_url)
        return not value(now, "auth0_rotator_last_rotation_timestamp_seconds", **ref)

    wait_for(gone, 15, "the deleted resource's series to disappear")


def _promtool_series(
    samples: Samples, names: tuple[str, ...], offset: float
) -> list[dict[str, str]]:
    """Scraped samples as promtool input series, constant for an hour.

    promtool's clock starts at 0, so timestamps are moved by ``-offset`` (the
    moment Ready turned False becomes 0); ``job`` is what the chart's
    ServiceMonitor adds.
    """
    series = []
    for (name, labels), sample in sorted(samples.items()):
        if name not in names:
            continue
        text = ",".join(f'{k}="{v}"' for k, v in sorted({*labels, ("job", JOB)}))
        shifted = sample - offset if name.endswith("_timestamp_seconds") else sample
        series.append({"series": f"{name}{{{text}}}", "values": f"{shifted:.0f}x60"})
    return series


def test_a_failing_rotation_fires_the_charts_alert_from_its_real_metrics(
    api: client.ApiClient,
    operator: RunningOperator,
    tenant_ns: str,
    kube: Kube,
    fake_tenant: FakeTenant,
    app_id: str,
    promtool: Path,
    tmp_path: Path,
) -> None:
    """End to end: the operator's series during a failing rotation fire the shipped rule.

    A forced rotation fails (the tenant's M2M application lacks update:client_keys);
    the scrape shows Ready=0 with the reason and since when; those very series,
    fed to promtool with the chart's rendered PrometheusRule, fire
    Auth0RotatorRotationFailing after notReadySeconds and not before.
    """
    reader = f"reader-{app_id}"
    make_tenant(
        api, tenant_ns, "readonly", reader, fake_tenant.create_client(reader, ["read:client_keys"])
    )
    kube.create(tenant_ns, a0cs_body("app", app_id, tenantRef={"name": "readonly"}))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "alert")
    kube.wait_reason(tenant_ns, "app", "InsufficientScope")
    ready = (
        "auth0_rotator_resource_ready",
        "auth0_rotator_resource_ready_transition_timestamp_seconds",
    )
    ref = {"namespace": tenant_ns, "name": "app"}

    def failing() -> Samples | None:
        now = scrape(operator.metrics_url)
        seen = [k for k in now if k[0] == ready[0] and {*ref.items()} <= k[1]]
        return now if seen and ("reason", "InsufficientScope") in seen[0][1] else None

    samples = wait_for(failing, 15, "Ready=0 InsufficientScope in the metrics")
    assert value(samples, ready[0], **ref, reason="InsufficientScope") == 0
    since = value(samples, ready[1], **ref)
    transition = parse_time(kube.condition(tenant_ns, "app")["lastTransitionTime"])
    assert transition is not None and since == transition.timestamp()

    rule = render_rule(_kube_bin_dir() / "helm")
    write_rules(rule, tmp_path)
    mine = {k: v for k, v in samples.items() if {*ref.items()} <= k[1]}
    labels = {"severity": "warning", **ref, "reason": "InsufficientScope"}
    fires = {"exp_labels": labels, "exp_annotations": _annotations(rule, labels)}
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": _promtool_series(mine, ready, offset=since),
            "alert_rule_test": [
                {"eval_time": "25m", "alertname": "Auth0RotatorRotationFailing", "exp_alerts": []},
                {"eval_time": "40m", "alertname": "Auth0RotatorRotationFailing",
                 "exp_alerts": [fires]},
            ],
        }],
    }  # fmt: skip
    (tmp_path / "from-scrape.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    out = run_promtool(promtool, "test", "rules", "from-scrape.yaml", cwd=tmp_path)
    assert "SUCCESS" in out
    # What the note shows: the input promtool was given, and that it fired.
    print(yaml.safe_dump(tests["tests"][0]["input_series"]), out)


def _annotations(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    """The rotation-failing alert's annotations as Prometheus renders them at 40 minutes."""
    (alert,) = [
        r for g in rule["spec"]["groups"] for r in g["rules"]
        if r["alert"] == "Auth0RotatorRotationFailing"
    ]  # fmt: skip
    rendered = {}
    for key, text in alert["annotations"].items():
        for name, label in labels.items():
            text = text.replace(f"{{{{ $labels.{name} }}}}", label)
        rendered[key] = text.replace("{{ $value | humanizeDuration }}", "40m 0s")
    return rendered


def test_metric_names_and_labels_follow_prometheus_conventions(operator: RunningOperator) -> None:
    samples = scrape(operator.metrics_url)
    ours = {name for name, _ in samples if name.startswith("auth0_rotator_")}
    assert {
        "auth0_rotator_leader",
        "auth0_rotator_build_info",
        "auth0_rotator_rotations_total",
        "auth0_rotator_rotation_duration_seconds_bucket",
        "auth0_rotator_auth0_requests_total",
        "auth0_rotator_resources",
    } <= ours
    bounded = {"namespace", "name", "trigger", "result", "reason", "ready_reason", "tenant"}
    bounded |= {"endpoint", "code", "le", "version"}
    for name, labels in samples:
        if name.startswith("auth0_rotator_"):
            assert {k for k, _ in labels} <= bounded, (name, labels)
            assert re.fullmatch(r"[a-z0-9_]+", name), name


def test_liveness_reports_the_leader_with_its_watch_streams(operator: RunningOperator) -> None:
    with urllib.request.urlopen(operator.health_url, timeout=5) as response:  # noqa: S310
        assert response.status == 200
        health = json.loads(response.read())
    assert health["status"] == "ok" and health["role"] == "leader"
    assert health["watchStreams"] >= 1


def test_json_logs_name_the_resource_and_the_rotation(
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    kube: Kube,
    app_id: str,
    processes: list[OperatorProcess],
    tmp_path: Path,
) -> None:
    op = OperatorProcess(
        control_plane, fake_tenant, tmp_path, "json", args=["--log-format", "json"]
    )
    processes.append(op)
    kube.create(crash_ns, a0cs_body("app", app_id))
    kube.wait_ready(crash_ns, "app", reason="Fetched")
    kube.annotate_rotate(crash_ns, "app", "json-logs")
    status = kube.wait_ready(crash_ns, "app", reason="Rotated")
    op.stop()

    lines = [json.loads(line) for line in op.log.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    # Every line about a resource names its namespace too (other tests' resources
    # called "app", in namespaces being deleted, may show up as well).
    named = [line for line in lines if line.get("name")]
    assert named and all(line.get("namespace") for line in named)
    about_app = [line for line in named if (line["namespace"], line["name"]) == (crash_ns, "app")]
    rotation = [line for line in about_app if line.get("rotation_id") == status["secretRevision"]]
    messages = " | ".join(line["message"] for line in rotation)
    assert "rotation started (annotation" in messages and "rotation finished" in messages


def test_human_logs_prefix_the_resource_and_the_rotation(
    operator: RunningOperator, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "human")
    revision = kube.wait_ready(tenant_ns, "app", reason="Rotated")["secretRevision"]
    formatter = HumanFormatter()
    records = [r for r in operator.logs.records if getattr(r, "a0_rotation", None) == revision]
    lines = [formatter.format(r) for r in records]
    assert any(f"[{tenant_ns}/app rotation={revision}] rotation started" in x for x in lines)


# -- kubectl --------------------------------------------------------------------------------


def _kubectl(plane: ControlPlane, *args: str) -> str:
    return plane.kubectl_run(*args)


def test_kubectl_get_shows_the_printer_columns_with_values(
    control_plane: ControlPlane,
    fake_tenant: FakeTenant,
    crash_ns: str,
    kube: Kube,
    app_id: str,
    processes: list[OperatorProcess],
    tmp_path: Path,
) -> None:
    # An operator on the real clock (the in-process one's clock is moved by other tests,
    # and kubectl shows a LAST ROTATED in the future as <invalid>).
    processes.append(OperatorProcess(control_plane, fake_tenant, tmp_path, "columns"))
    kube.create(crash_ns, a0cs_body("app", app_id, schedule="0 3 * * *", secretName="app-auth0"))
    kube.wait_ready(crash_ns, "app", reason="Fetched")
    kube.annotate_rotate(crash_ns, "app", "columns")
    kube.wait_ready(crash_ns, "app", reason="Rotated")
    out = _kubectl(control_plane, "get", "a0cs", "-n", crash_ns).splitlines()
    header = re.split(r"\s{2,}", out[0].strip())
    assert header == ["NAME", "CLIENT", "SECRET", "READY", "LAST ROTATED", "NEXT", "AGE"]
    row = re.split(r"\s{2,}", out[1].strip())
    assert row[:4] == ["app", app_id, "app-auth0", "True"]
    assert re.fullmatch(r"\d+s|\d+m\d*s?", row[4]), row  # LAST ROTATED: an age
    next_at = parse_time(row[5])  # NEXT: the next fire, 03:00 UTC
    assert next_at is not None and (next_at.hour, next_at.minute) == (3, 0), row


def _schema_fields(schema: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    fields: dict[str, dict[str, Any]] = {}
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        fields[path] = sub
        fields |= _schema_fields(sub, path)
        if sub.get("items"):
            fields |= _schema_fields(sub["items"], path)
    return fields


def test_kubectl_explain_documents_every_spec_field(
    control_plane: ControlPlane, crds: None
) -> None:
    crd = yaml.safe_load((REPO / "crds" / "auth0clientsecrets.auth0rotator.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    fields = _schema_fields(schema)
    undocumented = [path for path, sub in fields.items() if not sub.get("description")]
    assert undocumented == []
    out = _kubectl(control_plane, "explain", "auth0clientsecret.spec", "--recursive")
    listed = set(re.findall(r"^\s+(\w+)\s", out, re.MULTILINE))
    leaves = {path.rsplit(".", 1)[-1] for path in fields}
    assert leaves <= listed, leaves - listed
    described = _kubectl(control_plane, "explain", "auth0clientsecret.spec.minInterval")
    assert fields["minInterval"]["description"].split()[0] in described


def test_kubectl_wait_for_ready_after_creation_and_after_a_forced_rotation(
    control_plane: ControlPlane, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    kube.create(tenant_ns, a0cs_body("app", app_id))
    created = _kubectl(
        control_plane, "wait", "-n", tenant_ns, "--for=condition=Ready", "a0cs/app", "--timeout=60s"
    )
    assert "condition met" in created
    kube.annotate_rotate(tenant_ns, "app", "wait")
    handled = _kubectl(
        control_plane,
        "wait",
        "-n",
        tenant_ns,
        "--for=jsonpath={.status.lastRotateRequest}=wait",
        "a0cs/app",
        "--timeout=60s",
    )
    assert "condition met" in handled
    ready = _kubectl(
        control_plane, "wait", "-n", tenant_ns, "--for=condition=Ready", "a0cs/app", "--timeout=60s"
    )
    assert "condition met" in ready
    assert kube.condition(tenant_ns, "app")["reason"] == "Rotated"


def test_kubectl_describe_lists_the_events_in_order(
    control_plane: ControlPlane, api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        tenant_ns,
        {
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "registry.invalid/c:1"}]},
                },
            },
        },
    )
    body = a0cs_body("app", app_id, restartTargets=[{"kind": "Deployment", "name": "web"}])
    kube.create(tenant_ns, body)
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "describe")

    def rolled() -> bool:
        return kube.condition(tenant_ns, "app", "RolloutComplete").get("status") == "True"

    wait_for(rolled, 60, "RolloutComplete")

    def described() -> list[str] | None:
        out = _kubectl(control_plane, "describe", "a0cs", "app", "-n", tenant_ns)
        events = out.split("Events:", 1)[1] if "Events:" in out else ""
        reasons = re.findall(r"^\s+(?:Normal|Warning)\s+(\w+)", events, re.MULTILINE)
        return reasons if "RolloutComplete" in reasons else None

    reasons = wait_for(described, 15, "the RolloutComplete Event")
    assert reasons == ["Fetched", "RotationStarted", "Rotated", "Restarted", "RolloutComplete"]


def _rotated(kube: Kube, namespace: str, count: int) -> bool:
    status = kube.get(namespace, "app").get("status") or {}
    return bool(status.get("rotationCount") == count and not status.get("rotation"))


def test_repeated_identical_events_are_aggregated_not_flooded(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    """Three forced rotations: three RotationStarted occurrences, one Event with count 3."""
    times = 3
    kube.create(tenant_ns, a0cs_body("app", app_id))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    for n in range(times):
        kube.annotate_rotate(tenant_ns, "app", f"agg-{n}")
        wait_for(partial(_rotated, kube, tenant_ns, n + 1), 30, f"rotation {n + 1}")

    def aggregated() -> list[Any] | None:
        events = client.CoreV1Api(api).list_namespaced_event(
            tenant_ns, field_selector="involvedObject.name=app,reason=RotationStarted"
        )
        counts = [e.count for e in events.items]
        return events.items if sum(counts) == times else None

    items = wait_for(aggregated, 15, "aggregated RotationStarted Events")
    assert len(items) == 1 and items[0].count == times
    assert items[0].last_timestamp >= items[0].first_timestamp
