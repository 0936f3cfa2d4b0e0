"""What the kind suite applies works here too: the in-cluster fake, the chart values, examples.

Docker is absent on this machine, so tests/e2e is skipped; its manifests and
the chart values it uses are applied to the local control plane instead (kwok
plays the kubelet), and the workflow that runs the suite is checked.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from kubernetes import client, config

from auth0_rotator_dev.devcluster import ControlPlane
from tests.conftest import REPO, _kube_bin_dir
from tests.e2e.manifests import (
    FAKE_NAMESPACE,
    FAKE_SERVICE,
    chart_values,
    example_documents,
    fake_auth0_objects,
    fake_domain,
    runnable,
)


@pytest.fixture(scope="module")
def applied(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ControlPlane, list[dict[str, Any]]]]:
    """The fake tenant's objects, applied once for this module, then deleted."""
    objects = fake_auth0_objects(tmp_path_factory.mktemp("fake-tls"))
    control_plane.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump_all(objects))
    try:
        yield control_plane, objects
    finally:
        control_plane.kubectl_run("delete", "namespace", FAKE_NAMESPACE, "--wait=true", timeout=120)


def test_the_in_cluster_fake_tenant_is_admitted_and_rolls_out(
    applied: tuple[ControlPlane, list[dict[str, Any]]],
) -> None:
    plane, objects = applied
    plane.kubectl_run(
        "-n", FAKE_NAMESPACE, "rollout", "status", f"deploy/{FAKE_SERVICE}", "--timeout=120s"
    )
    service = json.loads(
        plane.kubectl_run("-n", FAKE_NAMESPACE, "get", "svc", FAKE_SERVICE, "-o", "json")
    )
    assert service["spec"]["ports"][0]["port"] == 443
    secret = next(o for o in objects if o["kind"] == "Secret")
    cert = x509.load_pem_x509_certificate(secret["stringData"]["tls.crt"].encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert fake_domain() in names.get_values_for_type(x509.DNSName)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:1] == ["fake-auth0"] and fake_domain() in args
    seed = json.loads(
        next(o for o in objects if o["metadata"]["name"] == "fake-auth0-seed")["data"]["seed.json"]
    )
    assert f"https://{fake_domain()}/api/v2/" in seed["clients"][0]["grants"]


def test_the_chart_installs_with_the_suites_values_and_trusts_the_fakes_ca(
    applied: tuple[ControlPlane, list[dict[str, Any]]], tmp_path: Path
) -> None:
    plane, _ = applied
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(chart_values()))
    helm = [str(_kube_bin_dir() / "helm"), "--kubeconfig", str(plane.kubeconfig)]
    installed = subprocess.run(
        [
            *helm,
            "install",
            "e2e",
            str(REPO / "charts" / "auth0-rotator"),
            "-n",
            FAKE_NAMESPACE,
            "--values",
            str(values),
            "--wait",
            "--timeout",
            "120s",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    try:
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        deployment = client.AppsV1Api(api).read_namespaced_deployment(
            "e2e-auth0-rotator", FAKE_NAMESPACE
        )
        container = deployment.spec.template.spec.containers[0]
        assert container.image == "auth0-rotator-e2e:dev" and container.image_pull_policy == "Never"
        args: list[str] = container.args or []
        assert "--extra-ca-file=/etc/auth0-rotator/ca/ca.crt" in args
        assert deployment.status.available_replicas == 1
        api.close()
    finally:
        subprocess.run([*helm, "uninstall", "e2e", "-n", FAKE_NAMESPACE, "--wait"], check=True)


def test_the_examples_pointed_at_the_in_cluster_fake_are_admitted(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl_run("apply", "-f", str(REPO / "crds"))
    docs = runnable(
        example_documents("auth0tenant.yaml", "orders-api.yaml", "auth0clientsecret.yaml")
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "auth0-rotator-e2e:dev" and container["command"][0] == "python"
    out = control_plane.kubectl_run(
        "apply", "-n", namespace, "-f", "-", input_text=yaml.safe_dump_all(docs)
    )
    assert "auth0tenant.auth0rotator.dev/default created" in out
    tenant = json.loads(
        control_plane.kubectl_run("-n", namespace, "get", "auth0tenant", "default", "-o", "json")
    )
    assert tenant["spec"]["domain"] == fake_domain()


def test_the_workflow_runs_the_kind_suite_on_a_supported_kubernetes() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "e2e.yml").read_text())
    job = workflow["jobs"]["kind"]
    steps = " ".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])
    assert "python -m pytest tests/e2e" in steps
    assert "azure/setup-helm" in steps and "--kind-image" in steps
    minor = int(job["env"]["KIND_NODE_IMAGE"].rsplit(":v1.", 1)[1].split(".")[0])
    chart = yaml.safe_load((REPO / "charts" / "auth0-rotator" / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.28.0-0" and minor >= 28
