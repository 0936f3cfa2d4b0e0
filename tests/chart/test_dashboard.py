"""The Grafana dashboard plots only metrics the operator exports, and the chart ships it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from auth0_rotator.metrics import Metrics

CHART = Path(__file__).resolve().parents[2] / "charts" / "auth0-rotator"
DASHBOARD = CHART / "dashboards" / "auth0-rotator.json"


def _exported_names() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names |= {sample.name for sample in family.samples}
        names.add(family.name)
    # Families that have no sample until something happens still have a name.
    return names


def test_dashboard_queries_use_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"auth0_rotator_[a-z0-9_]+", e)}
    exported = _exported_names() | {
        "auth0_rotator_rotations_total",
        "auth0_rotator_failures_total",
        "auth0_rotator_auth0_requests_total",
        "auth0_rotator_rotation_duration_seconds_bucket",
        "auth0_rotator_rollout_duration_seconds_bucket",
    }
    assert used <= exported, used - exported
    for needed in (
        "auth0_rotator_rotations_total",
        "auth0_rotator_failures_total",
        "auth0_rotator_next_rotation_timestamp_seconds",
        "auth0_rotator_auth0_rate_limit_remaining",
    ):
        assert needed in used, needed


def test_counters_the_dashboard_rates_are_counters() -> None:
    kinds = {f.name: f.type for f in Metrics().registry.collect()}
    for name in (
        "auth0_rotator_rotations",
        "auth0_rotator_failures",
        "auth0_rotator_auth0_requests",
    ):
        assert kinds[name] == "counter", name


def test_the_chart_ships_the_dashboard_only_when_asked(helm: Path) -> None:
    def render(*args: str) -> list[dict[str, object]]:
        out = subprocess.run(
            [str(helm), "template", "r", str(CHART), *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [d for d in yaml.safe_load_all(out) if d]

    assert not [d for d in render() if d["kind"] == "ConfigMap"]
    (config_map,) = [
        d for d in render("--set", "grafanaDashboard.enabled=true") if d["kind"] == "ConfigMap"
    ]
    metadata = config_map["metadata"]
    data = config_map["data"]
    assert isinstance(metadata, dict) and isinstance(data, dict)
    assert metadata["labels"]["grafana_dashboard"] == "1"
    assert json.loads(data["auth0-rotator.json"]) == json.loads(DASHBOARD.read_text())


def test_the_dashboard_links_to_the_alerts_and_their_runbooks() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    urls = [link["url"] for link in dashboard["links"]]
    assert any("alerting/list?search=Auth0Rotator" in u for u in urls)
    assert any(u.endswith("docs/runbooks.md") for u in urls)
    (alerts,) = [p for p in dashboard["panels"] if "ALERTS{" in p["targets"][0]["expr"]]
    assert 'alertname=~"Auth0Rotator.*"' in alerts["targets"][0]["expr"]
