"""Who may talk to the local control plane, and what they did: PKI, kubeconfigs, audit.

The control plane's CA signs the API server's serving certificate and client
certificates (the admin in ``system:masters``, and any identity a test asks
for); ServiceAccount tokens are signed with a key pair made here. The API
server keeps an audit log of what operators under test and ServiceAccounts
do (:data:`AUDIT_POLICY`), which tests read to compare with RBAC.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

from auth0_rotator_dev.pki import CertificateAuthority, write_rsa_key_pair

__all__ = [
    "AUDIT_POLICY",
    "OPERATORS_GROUP",
    "admin_ssl_context",
    "kubeconfig",
    "read_audit",
    "token_kubeconfig",
    "user_kubeconfig",
    "write_pki",
]

_HOST = "127.0.0.1"

OPERATORS_GROUP = "auth0-rotator:operators"
"""Group of the identities operators under test use (see :func:`user_kubeconfig`): their
requests, and those of every ServiceAccount, are recorded in the audit log."""

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "userGroups": [OPERATORS_GROUP, "system:serviceaccounts"]},
        {"level": "None"},
    ],
}


def write_pki(pki: Path) -> None:
    """The CA (key kept, to issue more), the API server's and admin's certificates, SA keys."""
    pki.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.create("auth0-rotator-devcluster-ca")
    (pki / "ca.crt").write_bytes(ca.cert_pem)
    ca.write_key(pki / "ca.key")
    hosts = (
        _HOST,
        "localhost",
        "10.0.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    )
    ca.issue("kube-apiserver", hosts=hosts).write(pki / "apiserver.crt", pki / "apiserver.key")
    ca.issue("admin", organizations=("system:masters",), client=True).write(
        pki / "admin.crt", pki / "admin.key"
    )
    write_rsa_key_pair(pki / "sa.key", pki / "sa.pub")


def kubeconfig(
    server: str, ca_file: Path, user: str, credentials: dict[str, str]
) -> dict[str, Any]:
    """A kubeconfig (as a dict) for ``server`` and one user with ``credentials``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }


def user_kubeconfig(path: Path, pki: Path, server: str, user: str, groups: tuple[str, ...]) -> Path:
    """Write a kubeconfig for a client certificate of ``user`` in ``groups``."""
    ca = CertificateAuthority.load(pki / "ca.crt", pki / "ca.key")
    ca.issue(user, organizations=groups, client=True).write(
        path.with_suffix(".crt"), path.with_suffix(".key")
    )
    certificate = {
        "client-certificate": str(path.with_suffix(".crt")),
        "client-key": str(path.with_suffix(".key")),
    }
    path.write_text(json.dumps(kubeconfig(server, pki / "ca.crt", user, certificate), indent=2))
    return path


def token_kubeconfig(path: Path, pki: Path, server: str, token: str, user: str) -> Path:
    """Write a kubeconfig that authenticates with a bearer ``token`` (a ServiceAccount's)."""
    path.touch(mode=0o600)
    path.write_text(
        json.dumps(kubeconfig(server, pki / "ca.crt", user, {"token": token}), indent=2)
    )
    return path


def admin_ssl_context(pki: Path) -> ssl.SSLContext:
    """A TLS context trusting the CA and presenting the admin's certificate."""
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def read_audit(log: Path, user: str | None = None) -> list[dict[str, Any]]:
    """Audit events recorded so far in ``log`` (of ``user`` only, if given)."""
    if not log.exists():
        return []
    events = []
    with log.open() as lines:
        for line in lines:
            if not line.strip():
                continue
            event = json.loads(line)
            if user is None or (event.get("user") or {}).get("username") == user:
                events.append(event)
    return events
