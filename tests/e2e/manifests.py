"""What the kind suite puts into the cluster besides the chart, as plain objects.

The fake Auth0 tenant runs in the cluster from a development image (the
operator's image plus :mod:`auth0_rotator_dev`, which the production image
does not ship: ``tests/e2e/Dockerfile.dev``) as ``auth0-rotator fake-auth0``,
behind a Service, with a CA and serving
certificate made here: the certificate is a Secret mounted as its TLS
directory, and the CA is the ConfigMap the chart's ``extraCA`` trusts. The
examples are applied with the tenant domain pointing at that Service.
These builders are exercised against the local control plane by
``tests/integration/test_e2e_manifests.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from auth0_rotator_dev.fake_auth0 import ensure_tls_files

__all__ = [
    "DEV_IMAGE",
    "EXAMPLE_DOMAIN",
    "FAKE_NAMESPACE",
    "FAKE_SERVICE",
    "chart_values",
    "example_documents",
    "fake_auth0_objects",
    "fake_domain",
    "runnable",
]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DOMAIN = "127.0.0.1:18443"
"""The tenant domain examples/ name (the local fake)."""
FAKE_NAMESPACE = "auth0-fake"
FAKE_SERVICE = "fake-auth0"
CA_CONFIG_MAP = "fake-auth0-ca"
IMAGE = "auth0-rotator-e2e:dev"
DEV_IMAGE = "auth0-rotator-e2e-tools:dev"
"""The operator image plus the development tools (the fake tenant runs from it)."""


def fake_domain() -> str:
    """The in-cluster tenant domain (the Service's DNS name, port 443)."""
    return f"{FAKE_SERVICE}.{FAKE_NAMESPACE}.svc"


def _rewritten(text: str) -> str:
    return text.replace(EXAMPLE_DOMAIN, fake_domain())


def example_documents(*names: str) -> list[dict[str, Any]]:
    """The documents of ``examples/<name>`` with the tenant domain rewritten."""
    docs: list[dict[str, Any]] = []
    for name in names:
        text = _rewritten((REPO / "examples" / name).read_text())
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def runnable(docs: list[dict[str, Any]], image: str = IMAGE) -> list[dict[str, Any]]:
    """The examples with their placeholder workload image replaced by one that runs in kind.

    A real kubelet pulls images (kwok does not): the orders-api Deployment runs the
    locally loaded operator image, sleeping, with its Secret-fed environment intact.
    """
    for doc in docs:
        if doc.get("kind") == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                container["image"] = image
                container["imagePullPolicy"] = "Never"
                container["command"] = ["python", "-c", "import time; time.sleep(10**9)"]
    return docs


def fake_auth0_objects(tls_dir: Path, image: str = DEV_IMAGE) -> list[dict[str, Any]]:
    """The fake tenant's Namespace, TLS Secret, seed, Deployment and Service.

    Also the CA ConfigMap the operator trusts (in the fake's namespace: see
    :func:`chart_values`). The certificate also names 127.0.0.1, so the suite can
    check the fake's state through a port-forward with full verification.
    """
    hosts = (fake_domain(), f"{FAKE_SERVICE}.{FAKE_NAMESPACE}", "127.0.0.1")
    ca, cert, key = ensure_tls_files(tls_dir, hosts)
    seed = _rewritten((REPO / "examples" / "fake-auth0-seed.json").read_text())
    json.loads(seed)  # still JSON after the rewrite
    labels = {"app.kubernetes.io/name": FAKE_SERVICE}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": FAKE_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "fake-auth0-tls", "namespace": FAKE_NAMESPACE},
            "type": "Opaque",
            "stringData": {
                "ca.crt": ca.read_text(),
                "tls.crt": cert.read_text(),
                "tls.key": key.read_text(),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "fake-auth0-seed", "namespace": FAKE_NAMESPACE},
            "data": {"seed.json": seed},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CA_CONFIG_MAP, "namespace": FAKE_NAMESPACE},
            "data": {"ca.crt": ca.read_text()},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": FAKE_SERVICE, "namespace": FAKE_NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "fake-auth0",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "args": [
                                    "fake-auth0",
                                    "--listen",
                                    "0.0.0.0:8443",
                                    "--tls-dir",
                                    "/tls",
                                    "--domain",
                                    fake_domain(),
                                    "--seed",
                                    "/seed/seed.json",
                                ],
                                "ports": [{"name": "https", "containerPort": 8443}],
                                "readinessProbe": {"tcpSocket": {"port": "https"}},
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "tls", "mountPath": "/tls", "readOnly": True},
                                    {"name": "seed", "mountPath": "/seed", "readOnly": True},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "tls", "secret": {"secretName": "fake-auth0-tls"}},
                            {"name": "seed", "configMap": {"name": "fake-auth0-seed"}},
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": FAKE_SERVICE, "namespace": FAKE_NAMESPACE, "labels": labels},
            "spec": {
                "selector": labels,
                "ports": [{"name": "https", "port": 443, "targetPort": "https"}],
            },
        },
    ]


def chart_values() -> dict[str, Any]:
    """Helm values for the kind suite: the locally built image, the fake's CA, fast restarts.

    The chart mounts ``extraCA`` from its own namespace, so the suite installs the
    release into the fake's namespace.
    """
    repository, tag = IMAGE.split(":")
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "extraCA": {"configMapName": CA_CONFIG_MAP, "key": "ca.crt"},
        # Credentials go to Auth0's domains only, unless allowed: this is the fake.
        "allowedDomains": [fake_domain()],
        "operator": {"restartWindowSeconds": 0},
        "logFormat": "json",
    }
