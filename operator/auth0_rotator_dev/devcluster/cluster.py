"""A real local Kubernetes control plane on 127.0.0.1.

etcd, kube-apiserver (TLS serving, client-certificate admin, RBAC,
service-account token signing, an audit log of what operators and service
accounts do), kube-controller-manager (garbage collection,
ReplicaSets, service accounts), kube-scheduler and kwok (fake nodes whose pods
become Ready, so Deployments really roll). The binaries come from
``hack/kube-bins.sh``; nothing here is a mock.

Ports are chosen free at start, everything binds to 127.0.0.1, all state
(certificates, kubeconfig, etcd data, logs, pid files) lives in one state
directory, and a start-up failure stops whatever had started and raises
:class:`ControlPlaneError` with the tail of every component's log.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auth0_rotator_dev.devcluster.credentials import (
    AUDIT_POLICY,
    admin_ssl_context,
    kubeconfig,
    read_audit,
    token_kubeconfig,
    user_kubeconfig,
    write_pki,
)
from auth0_rotator_dev.devcluster.processes import ManagedProcess, kill_recorded, log_tail

__all__ = ["BINARIES", "ControlPlane", "ControlPlaneError", "free_port"]

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
)
"""Binaries the control plane needs in its bin directory."""

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
_HOST = "127.0.0.1"


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or used; the message says why."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ControlPlane:
    """A local control plane: call :meth:`start`, use :attr:`kubeconfig`, then :meth:`stop`."""

    bin_dir: Path
    """Directory holding the binaries of :data:`BINARIES`."""

    state_dir: Path
    """Where certificates, kubeconfigs, etcd data, logs and pid files live."""

    nodes: int = 1
    """Number of kwok fake nodes."""

    startup_timeout: float = 180.0
    """Seconds to wait for every component to become ready."""

    kwok_stages: Path | None = None
    """kwok's Stage objects; default: the ones ``hack/kube-bins.sh`` took from kwok (fast)."""

    api_port: int = 0
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate in group ``system:masters``)."""
        return self.state_dir / "admin.kubeconfig"

    @property
    def server(self) -> str:
        """The API server URL."""
        return f"https://{_HOST}:{self.api_port}"

    @property
    def kubectl(self) -> Path:
        """The kubectl built with the control plane (matches the server version)."""
        return self.bin_dir / "kubectl"

    @property
    def ca_file(self) -> Path:
        """CA certificate that signed the API server's serving certificate."""
        return self.state_dir / "pki" / "ca.crt"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log (JSON lines): requests of operators and ServiceAccounts."""
        return self.state_dir / "audit.log"

    def audit_events(self, user: str | None = None) -> list[dict[str, Any]]:
        """Audit events recorded so far (of ``user`` only, if given)."""
        return read_audit(self.audit_log, user)

    def user_kubeconfig(self, path: Path, user: str, groups: tuple[str, ...]) -> Path:
        """Write a kubeconfig for a client certificate of ``user`` in ``groups``."""
        return user_kubeconfig(path, self.state_dir / "pki", self.server, user, groups)

    def token_kubeconfig(self, path: Path, token: str, user: str = "token-user") -> Path:
        """Write a kubeconfig that authenticates with a bearer ``token`` (a ServiceAccount's)."""
        return token_kubeconfig(path, self.state_dir / "pki", self.server, token, user)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> ControlPlane:
        """Start every component and wait until the cluster is usable."""
        missing = [b for b in BINARIES if not (self.bin_dir / b).is_file()]
        if missing:
            raise ControlPlaneError(
                f"missing binaries in {self.bin_dir}: {', '.join(missing)}; "
                "build them with hack/kube-bins.sh"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # A previous run that crashed may have left processes behind.
        kill_recorded(self.state_dir)
        try:
            self._start_all()
        except BaseException as exc:
            report = self.describe_logs()
            self.stop()
            if isinstance(exc, ControlPlaneError):
                raise ControlPlaneError(f"{exc}\n{report}") from exc
            raise
        return self

    def stop(self) -> None:
        """Stop every component (process groups, SIGTERM then SIGKILL)."""
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        kill_recorded(self.state_dir)

    def restart_apiserver(self, down_for: float = 2.0) -> None:
        """Stop kube-apiserver, keep it down for ``down_for`` seconds, start it again.

        Same arguments, port and etcd data: clients see refused connections, cut
        watch streams, then the same cluster again (fault-injection tests).
        """
        index, old = next(
            (i, p) for i, p in enumerate(self.processes) if p.name == "kube-apiserver"
        )
        argv = [str(a) for a in old.process.args]  # type: ignore[union-attr]
        old.stop()
        time.sleep(down_for)
        self.processes[index] = ManagedProcess.start("kube-apiserver", argv, self.state_dir)
        ctx = admin_ssl_context(self.state_dir / "pki")
        self._wait("kube-apiserver /readyz", lambda: _http_ok(f"{self.server}/readyz", ctx))

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def describe_logs(self, lines: int = 25) -> str:
        """The last lines of every component log, for failure reports."""
        parts = []
        for proc in self.processes:
            state = "running" if proc.alive() else f"exited {proc.process.returncode}"
            parts.append(
                f"--- {proc.name} ({state}) {proc.log_path}\n{log_tail(proc.log_path, lines)}"
            )
        return "\n".join(parts)

    def kubectl_run(self, *args: str, input_text: str | None = None, timeout: float = 60) -> str:
        """Run the built kubectl as admin; return stdout or raise with its stderr."""
        result = subprocess.run(
            [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    # -- start-up steps -------------------------------------------------------------

    def _start_all(self) -> None:
        pki = self.state_dir / "pki"
        write_pki(pki)
        # JSON is valid YAML: the API server reads the policy as written.
        (self.state_dir / "audit-policy.json").write_text(json.dumps(AUDIT_POLICY))
        self.audit_log.unlink(missing_ok=True)
        etcd_port, etcd_peer = free_port(), free_port()
        self.api_port = self.api_port or free_port()
        etcd_data = self.state_dir / "etcd"
        shutil.rmtree(etcd_data, ignore_errors=True)

        self._spawn(
            "etcd",
            "--name=local",
            f"--data-dir={etcd_data}",
            f"--listen-client-urls=http://{_HOST}:{etcd_port}",
            f"--advertise-client-urls=http://{_HOST}:{etcd_port}",
            f"--listen-peer-urls=http://{_HOST}:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://{_HOST}:{etcd_peer}",
            f"--initial-cluster=local=http://{_HOST}:{etcd_peer}",
            "--unsafe-no-fsync=true",
            "--watch-progress-notify-interval=5s",
            "--log-level=warn",
        )
        self._wait("etcd health", lambda: _http_ok(f"http://{_HOST}:{etcd_port}/health"))

        self._spawn(
            "kube-apiserver",
            f"--etcd-servers=http://{_HOST}:{etcd_port}",
            f"--bind-address={_HOST}",
            f"--advertise-address={_HOST}",
            f"--secure-port={self.api_port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            # Loopback addresses are refused in the `kubernetes` Endpoints.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            f"--audit-policy-file={self.state_dir / 'audit-policy.json'}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=batch",
            "--audit-log-batch-max-wait=1s",
        )
        admin = {
            "client-certificate": str(pki / "admin.crt"),
            "client-key": str(pki / "admin.key"),
        }
        # JSON is valid YAML; kubeconfig readers accept it.
        self.kubeconfig.write_text(
            json.dumps(kubeconfig(self.server, pki / "ca.crt", "admin", admin), indent=2)
        )
        ctx = admin_ssl_context(pki)
        self._wait("kube-apiserver /readyz", lambda: _http_ok(f"{self.server}/readyz", ctx))

        kcfg = str(self.kubeconfig)
        self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={kcfg}",
            f"--authentication-kubeconfig={kcfg}",
            f"--authorization-kubeconfig={kcfg}",
            f"--bind-address={_HOST}",
            f"--secure-port={free_port()}",
            f"--cert-dir={pki / 'kcm'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--leader-elect=false",
            # No kubelets heart-beating: never taint or evict kwok's nodes.
            "--controllers=*,-nodeipam,-nodelifecycle",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        )
        self._spawn(
            "kube-scheduler",
            f"--kubeconfig={kcfg}",
            f"--authentication-kubeconfig={kcfg}",
            f"--authorization-kubeconfig={kcfg}",
            f"--bind-address={_HOST}",
            f"--secure-port={free_port()}",
            f"--cert-dir={pki / 'scheduler'}",
            "--leader-elect=false",
        )
        kwok_port = free_port()
        self._spawn(
            "kwok",
            f"--kubeconfig={kcfg}",
            f"--config={self.kwok_stages or self.bin_dir.parent / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            "--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom",
            f"--server-address={_HOST}:{kwok_port}",
            f"--node-ip={_HOST}",
            f"--node-port={kwok_port}",
            "--cidr=10.244.0.1/16",
        )
        for i in range(self.nodes):
            self.kubectl_run(
                "create", "-f", "-", input_text=json.dumps(_kwok_node(f"kwok-node-{i}"))
            )
        self._wait("kwok nodes Ready", self._nodes_ready)
        # Admission taints new nodes not-ready; the node-lifecycle controller
        # that would lift it is off (no kubelets), so lift it here once kwok
        # reports the node Ready.
        for i in range(self.nodes):
            self.kubectl_run("patch", "node", f"kwok-node-{i}", "-p", '{"spec":{"taints":[]}}')
        # Pods need the namespace's default ServiceAccount (made by the controller-manager).
        self._wait("default ServiceAccount", self._default_service_account)

    def _spawn(self, name: str, *args: str) -> None:
        self.processes.append(
            ManagedProcess.start(name, [str(self.bin_dir / name), *args], self.state_dir)
        )

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            dead = [p.name for p in self.processes if not p.alive()]
            if dead:
                raise ControlPlaneError(f"{', '.join(dead)} exited while waiting for {what}")
            with contextlib.suppress(ControlPlaneError):
                if ready():
                    return
            time.sleep(0.2)
        raise ControlPlaneError(f"timed out after {self.startup_timeout:.0f}s waiting for {what}")

    def _nodes_ready(self) -> bool:
        out = json.loads(self.kubectl_run("get", "nodes", "-o", "json"))
        ready = [
            n
            for n in out["items"]
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= self.nodes

    def _default_service_account(self) -> bool:
        self.kubectl_run("get", "serviceaccount", "default", "-n", "default")
        return True


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _kwok_node(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }
