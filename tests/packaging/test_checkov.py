"""checkov on the chart and the Dockerfile: every finding is fixed or justified.

checkov is big (its own pinned dependency tree), so it is not a dev
dependency of the project: it is installed once into its own virtualenv in
the user cache (``~/.cache/auth0-rotator/checkov-<version>``) from PyPI and
reused. Every check it fails must be listed in ``JUSTIFIED`` *and* explained
in the chart README's "checkov" section; a new finding fails this test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _kube_bin_dir

REPO = Path(__file__).resolve().parents[2]
CHECKOV_VERSION = "3.3.30"
JUSTIFIED = {
    "CKV_K8S_21",  # default namespace: only in the scan's own rendering; --namespace at install
    "CKV_K8S_9",  # readiness probe: the operator serves no traffic
    "CKV_K8S_11",  # CPU limit: throttling would delay Lease renewals; requests are set
    "CKV_K8S_43",  # image digest: image.digest exists; no digest can be known before release
    "CKV_K8S_38",  # service-account token: the operator is an API client
    "CKV_K8S_15",  # pull policy Always: tags are immutable releases, digests are supported
    "CKV2_K8S_6",  # NetworkPolicy: egress to the API server and Auth0 is cluster-specific
    "CKV_DOCKER_2",  # HEALTHCHECK: Kubernetes ignores it; the chart's liveness probe checks
}

pytestmark = pytest.mark.packaging


@pytest.fixture(scope="session")
def checkov() -> Path:
    """The checkov executable, installed on first use into a cached virtualenv."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "auth0-rotator" / f"checkov-{CHECKOV_VERSION}"
    exe = venv / "bin" / "checkov"
    if not exe.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", f"checkov=={CHECKOV_VERSION}"],
            check=True,
            timeout=900,
        )
    return exe


def _scan(checkov: Path, *args: str) -> list[dict[str, Any]]:
    env = {
        **os.environ,
        "PATH": f"{_kube_bin_dir()}:{os.environ['PATH']}",  # helm, for the chart
        "BC_SKIP_MAPPING": "TRUE",  # no guideline download (offline)
        "CKV_NO_GUIDELINES": "TRUE",
        "LOG_LEVEL": "ERROR",
    }
    out = subprocess.run(
        [str(checkov), *args, "--output", "json", "--quiet", "--skip-download"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert out.returncode in (0, 1), out.stderr[-3000:]  # 1: findings
    data = json.loads(out.stdout)
    reports = data if isinstance(data, list) else [data]
    failed: list[dict[str, Any]] = []
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        assert report["summary"]["passed"] > 0, "checkov checked nothing"
        failed += report["results"]["failed_checks"]
    return failed


@pytest.mark.parametrize(
    "target",
    [
        ("-d", "charts/auth0-rotator", "--framework", "helm"),
        ("-f", "Dockerfile", "--framework", "dockerfile"),
    ],
    ids=["chart", "dockerfile"],
)
def test_every_checkov_finding_is_justified(checkov: Path, target: tuple[str, ...]) -> None:
    failed = {f["check_id"] for f in _scan(checkov, *target)}
    assert failed <= JUSTIFIED, f"new findings to fix or justify: {sorted(failed - JUSTIFIED)}"


def test_every_justification_is_written_down_in_the_chart_readme() -> None:
    readme = (REPO / "charts" / "auth0-rotator" / "README.md").read_text()
    section = readme.split("## checkov", 1)[1] if "## checkov" in readme else ""
    missing = [check for check in sorted(JUSTIFIED) if check not in section]
    assert missing == [], missing
