"""End to end on a real kind cluster (Docker): image, chart, in-cluster fake tenant, rotation.

Run with ``pytest tests/e2e`` on a machine with Docker and helm (see
``.github/workflows/e2e.yml``). pytest-kind creates the cluster; set
``KIND_VERSION``/``KUBECTL_VERSION`` and ``--kind-image`` to a Kubernetes the
chart supports (>= 1.28), as the workflow does.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.manifests import (
    DEV_IMAGE,
    FAKE_NAMESPACE,
    FAKE_SERVICE,
    IMAGE,
    chart_values,
    example_documents,
    fake_auth0_objects,
    runnable,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
APP_NS = "orders"
REVISION = "auth0rotator.dev/secret-revision"


def _apply(cluster: Any, docs: list[dict[str, Any]], namespace: str | None = None) -> None:
    args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
    subprocess.run(
        [str(cluster.kubectl_path), *args],
        input=yaml.safe_dump_all(docs),
        text=True,
        check=True,
        env={"KUBECONFIG": str(cluster.kubeconfig_path), "PATH": "/usr/bin:/bin"},
    )


def _get(cluster: Any, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cluster.kubectl("get", *args, "-o", "json"))
    return data


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _ready_reason(cluster: Any) -> str | None:
    status = _get(cluster, "-n", APP_NS, "a0cs", "orders-api").get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
    return str(ready[0]["reason"]) if ready and ready[0]["status"] == "True" else None


@pytest.fixture(scope="module")
def installed(kind_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The image built and loaded, the fake tenant running, the chart installed."""
    subprocess.run(["docker", "build", "-t", IMAGE, str(REPO)], check=True)
    dev = ["-f", str(REPO / "tests" / "e2e" / "Dockerfile.dev"), "--build-arg", f"BASE={IMAGE}"]
    subprocess.run(["docker", "build", "-t", DEV_IMAGE, *dev, str(REPO)], check=True)
    kind_cluster.load_docker_image(IMAGE)
    kind_cluster.load_docker_image(DEV_IMAGE)
    _apply(kind_cluster, fake_auth0_objects(tmp_path_factory.mktemp("fake-tls")))
    kind_cluster.kubectl(
        "-n", FAKE_NAMESPACE, "rollout", "status", f"deploy/{FAKE_SERVICE}", "--timeout=180s"
    )
    values = tmp_path_factory.mktemp("values") / "values.yaml"
    values.write_text(yaml.safe_dump(chart_values()))
    subprocess.run(
        [
            "helm",
            "install",
            "auth0-rotator",
            str(REPO / "charts" / "auth0-rotator"),
            "--namespace",
            FAKE_NAMESPACE,
            "--values",
            str(values),
            "--wait",
            "--timeout",
            "5m",
            "--kubeconfig",
            str(kind_cluster.kubeconfig_path),
        ],
        check=True,
    )
    return kind_cluster


def test_a_forced_rotation_reaches_auth0_the_secret_and_new_pods(installed: Any) -> None:
    cluster = installed
    cluster.kubectl("create", "namespace", APP_NS)
    docs = example_documents("auth0tenant.yaml", "orders-api.yaml", "auth0clientsecret.yaml")
    _apply(cluster, runnable(docs), APP_NS)
    _wait(lambda: _ready_reason(cluster) == "Fetched", 180, "Ready=True Fetched")
    cluster.kubectl(
        "-n",
        APP_NS,
        "annotate",
        "a0cs",
        "orders-api",
        f"auth0rotator.dev/rotate={int(time.time())}",
        "--overwrite",
    )
    _wait(lambda: _ready_reason(cluster) == "Rotated", 180, "Ready=True Rotated")

    secret = _get(cluster, "-n", APP_NS, "secret", "orders-api-auth0")
    value = base64.b64decode(secret["data"]["client_secret"]).decode()
    ca = _get(cluster, "-n", FAKE_NAMESPACE, "configmap", "fake-auth0-ca")["data"]["ca.crt"]
    context = ssl.create_default_context(cadata=ca)  # the certificate names 127.0.0.1
    with cluster.port_forward(f"service/{FAKE_SERVICE}", 443, "-n", FAKE_NAMESPACE) as port:
        url = f"https://127.0.0.1:{port}/_fake/clients/orders-api-client"
        response = urllib.request.urlopen(url, context=context)
        auth0 = json.loads(response.read())
        response.close()
    assert auth0["client_secret"] == value
    assert auth0["secret_changes"] == 1

    status = _get(cluster, "-n", APP_NS, "a0cs", "orders-api")["status"]

    def rolled() -> bool:
        pods = _get(cluster, "-n", APP_NS, "pods", "-l", "app.kubernetes.io/name=orders-api")
        live = [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 2 and all(
            p["metadata"].get("annotations", {}).get(REVISION) == status["secretRevision"]
            and p["status"].get("phase") == "Running"
            for p in live
        )

    _wait(rolled, 300, "two new pods with the new revision")
