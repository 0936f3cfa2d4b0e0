"""The chart's PrometheusRule: promtool checks and unit-tests it; every alert is documented.

``tests/chart/alerts/rules_test.yaml`` holds the promtool unit tests (input
series -> expected alerts, with a case that must not fire for each alert).
They run against the rule as ``helm template`` renders it, so what is tested is
what the chart ships. promtool comes from ``hack/promtool.sh`` (pinned in
``hack/versions.env``, cached outside the repository).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.test_dashboard import DASHBOARD, _exported_names
from tests.conftest import REPO

CHART = REPO / "charts" / "auth0-rotator"
RULE_TESTS = Path(__file__).parent / "alerts" / "rules_test.yaml"
RUNBOOKS = REPO / "docs" / "runbooks.md"
RELEASE = NAMESPACE = "auth0-rotator"  # the job the tests' series carry: auth0-rotator-metrics


def render_rule(helm: Path, *args: str) -> dict[str, Any]:
    """The PrometheusRule ``helm template`` renders (enabled), with extra ``--set`` args."""
    out = subprocess.run(
        [str(helm), "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
         "--set", "prometheusRule.enabled=true", *args,
         "--show-only", "templates/prometheusrule.yaml"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rule: dict[str, Any] = yaml.safe_load(out.stdout)
    return rule


def alerts_of(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Alert name -> rule, over every group."""
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}


def write_rules(rule: dict[str, Any], directory: Path) -> Path:
    """The rule's groups as a Prometheus rules file, as the Prometheus Operator loads them."""
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return path


def run_promtool(promtool: Path, *args: str, cwd: Path) -> str:
    """Promtool's output; fails the test with it when promtool fails."""
    out = subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def rule(helm: Path) -> dict[str, Any]:
    return render_rule(helm)


def test_promtool_accepts_the_rendered_rules(
    rule: dict[str, Any], promtool: Path, tmp_path: Path
) -> None:
    path = write_rules(rule, tmp_path)
    out = run_promtool(promtool, "check", "rules", str(path), cwd=tmp_path)
    assert f"SUCCESS: {len(alerts_of(rule))} rules found" in out


def test_the_rule_unit_tests_pass(rule: dict[str, Any], promtool: Path, tmp_path: Path) -> None:
    write_rules(rule, tmp_path)
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    out = run_promtool(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert "SUCCESS" in out


def test_a_broken_expectation_fails_the_rule_tests(
    rule: dict[str, Any], promtool: Path, tmp_path: Path
) -> None:
    """The harness can fail: a test that expects a quiet alert to fire is reported."""
    write_rules(rule, tmp_path)
    quiet = "eval_time: 20m\n        alertname: Auth0RotatorRotationFailing\n        exp_alerts: []"
    wrong = RULE_TESTS.read_text().replace(
        quiet, quiet.replace("[]", "[{exp_labels: {severity: warning}}]")
    )
    assert wrong != RULE_TESTS.read_text()
    (tmp_path / "wrong.yaml").write_text(wrong)
    out = subprocess.run(
        [str(promtool), "test", "rules", "wrong.yaml"],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert out.returncode != 0 and "Auth0RotatorRotationFailing" in out.stdout + out.stderr


def test_every_alert_has_a_case_that_fires_and_one_that_must_not(rule: dict[str, Any]) -> None:
    cases = [
        c for t in yaml.safe_load(RULE_TESTS.read_text())["tests"] for c in t["alert_rule_test"]
    ]
    for alert in alerts_of(rule):
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in mine), f"{alert}: no case where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{alert}: no case where it must not fire"


def test_alerts_follow_prometheus_conventions(rule: dict[str, Any]) -> None:
    for name, alert in alerts_of(rule).items():
        assert re.fullmatch(r"Auth0Rotator[A-Z][A-Za-z0-9]+", name), name
        assert alert["labels"]["severity"] in ("critical", "warning"), name
        annotations = alert["annotations"]
        assert {"summary", "description", "runbook_url"} <= annotations.keys(), name
        assert annotations["runbook_url"].endswith(f"docs/runbooks.md#{name.lower()}")
        if "(namespace, name)" in alert["expr"]:  # per-resource alerts say which resource
            assert "{{ $labels.namespace }}/{{ $labels.name }}" in annotations["description"]


def test_rules_read_only_metrics_the_operator_exports(rule: dict[str, Any]) -> None:
    used = {
        m
        for alert in alerts_of(rule).values()
        for m in re.findall(r"auth0_rotator_[a-z0-9_]+", alert["expr"])
    }
    exported = _exported_names() | {"auth0_rotator_auth0_requests_total"}
    assert used <= exported, used - exported
    assert "auth0_rotator_resource_ready" in used


def test_every_alert_has_a_runbook_section_and_a_line_in_the_chart_readme(
    rule: dict[str, Any],
) -> None:
    runbooks = RUNBOOKS.read_text()
    headings = re.findall(r"^## (\S+)$", runbooks, re.MULTILINE)
    readme = (CHART / "README.md").read_text()
    dashboard = DASHBOARD.read_text()
    for alert in alerts_of(rule):
        assert alert in headings, f"docs/runbooks.md has no section '## {alert}'"
        section = runbooks.split(f"## {alert}\n", 1)[1].split("\n## ", 1)[0]
        assert "**Check**" in section and "**Do**" in section, alert
        assert f"`{alert}`" in readme, f"the chart README does not list {alert}"
    assert "Auth0Rotator" in dashboard  # the dashboard links to the alerts


def test_values_reach_the_rules(helm: Path) -> None:
    rule = render_rule(
        helm,
        "--set", "prometheusRule.alerts.rotationFailing.notReadySeconds=600",
        "--set", "prometheusRule.alerts.rotationFailing.for=1m",
        "--set", "prometheusRule.alerts.rotationFailing.severity=critical",
        "--set", "prometheusRule.alerts.secretTooOld.enabled=false",
        "--set", "prometheusRule.alertLabels.team=platform",
        "--set", "prometheusRule.runbookBaseURL=https://wiki.example.com/auth0-rotator",
        "--set", "prometheusRule.selector=job=\"custom\"",
    )  # fmt: skip
    alerts = alerts_of(rule)
    failing = alerts["Auth0RotatorRotationFailing"]
    assert failing["expr"].rstrip().endswith("> 600") and failing["for"] == "1m"
    assert failing["labels"] == {"severity": "critical", "team": "platform"}
    assert failing["annotations"]["runbook_url"] == (
        "https://wiki.example.com/auth0-rotator#auth0rotatorrotationfailing"
    )
    assert 'job="custom"' in failing["expr"] and "auth0-rotator-metrics" not in failing["expr"]
    assert "Auth0RotatorSecretTooOld" not in alerts and len(alerts) == 8


def _render_error(helm: Path, *args: str) -> str:
    out = subprocess.run(
        [str(helm), "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode != 0, f"helm template {' '.join(args)} unexpectedly rendered"
    return out.stderr


def test_bad_alert_values_are_refused(helm: Path) -> None:
    on = ("--set", "prometheusRule.enabled=true")
    assert "metrics.enabled" in _render_error(helm, *on, "--set", "metrics.enabled=false")
    error = _render_error(helm, *on, "--set", "prometheusRule.alerts.noLeader.for=soon")
    assert "prometheusRule" in error and "for" in error
    error = _render_error(helm, *on, "--set", "prometheusRule.alerts.rolloutStalled.severity=page")
    assert "severity" in error
    off = [
        a
        for k in ("rotationFailing", "secretTooOld", "rotationOverdue", "rolloutStalled",
                  "auth0RateLimited", "auth0BudgetExhausted", "tokenEndpointFailing",
                  "noLeader", "operatorDown")
        for a in ("--set", f"prometheusRule.alerts.{k}.enabled=false")
    ]  # fmt: skip
    assert "every alert disabled" in _render_error(helm, *on, *off)


def test_the_rule_is_opt_in(helm: Path) -> None:
    out = subprocess.run(
        [str(helm), "template", RELEASE, str(CHART), "--namespace", NAMESPACE],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "kind: PrometheusRule" not in out.stdout
