"""Benchmark: end-to-end latency of a forced rotation, against three references.

On one local control plane and one fake Auth0 tenant (both on 127.0.0.1),
measures over N rotations, from the moment of the trigger to
(a) the target Secret holding the new value, (b) the Deployment's pod template
patched, (c) the rollout complete:

- operator: ``auth0rotator.dev/rotate`` annotation -> auth0-rotator (a real
  ``auth0-rotator run`` process, verification on);
- floor: the necessary calls made directly (Auth0 PATCH with a cached token,
  Secret write, Deployment patch) with httpx/the API client — the machine's limit;
- runbook: what users do by hand today: ``curl`` rotate-secret, ``kubectl create
  secret --dry-run=client -o yaml | kubectl apply -f -``, ``kubectl rollout restart``;
- crash-safe floor (a third reference, not in the goal): the least a rotation that
  survives a crash at any point must do (SPEC §3), made directly: create a staging
  Secret, claim (a resourceVersion-checked status write), Auth0 PATCH, verify (a
  token request with the new secret), fence (another checked status write), Secret
  write, Deployment patch. No trigger, no reads, no Events.

Goal: operator (b) p50 within 2x the floor and under 1/5 of the runbook.
Usage: python benchmarks/rotation_latency.py [--rotations 30] [--restart-window 0]
Writes benchmarks/results/rotation_latency.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config, watch

from auth0_rotator_dev.devcluster import ControlPlane
from auth0_rotator_dev.devcluster.cluster import free_port
from processes import Processes

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "rotation_latency.json"
NS = "bench"
JOURNAL_NS = "bench-journal"
"""Where the crash-safe floor keeps its journal object (the operator does not watch it)."""
REVISION = "auth0rotator.dev/secret-revision"
DEPLOYMENTS = ("web-operator", "web-floor", "web-runbook", "web-safe")


def _wait(check: Callable[[], bool], timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError("benchmark step did not finish")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


class Bench:
    """The shared environment and the three ways of rotating."""

    def __init__(self, plane: ControlPlane, tmp: Path) -> None:
        self.plane = plane
        self.tmp = tmp
        self.port = free_port()
        self.domain = f"127.0.0.1:{self.port}"
        self.audience = f"https://{self.domain}/api/v2/"
        # Plain dict bodies throughout: the generated clients are used untyped here.
        new_client: Any = config.new_client_from_config
        self.api = new_client(config_file=str(plane.kubeconfig))
        self.core: Any = client.CoreV1Api(self.api)
        self.apps: Any = client.AppsV1Api(self.api)
        self.custom: Any = client.CustomObjectsApi(self.api)
        self.processes = Processes(tmp)

    def start_fake(self) -> None:
        """Start the fake tenant process with three applications."""
        seed = self.tmp / "seed.json"
        clients = [
            {
                "client_id": "m2m",
                "client_secret": "m" * 48,
                "grants": {self.audience: ["read:client_keys", "update:client_keys"]},
            }
        ]
        clients += [
            {"client_id": c} for c in ("app-operator", "app-floor", "app-runbook", "app-safe")
        ]
        seed.write_text(json.dumps({"clients": clients}))
        self.processes.spawn(
            [
                sys.executable,
                "-m",
                "auth0_rotator.cli",
                "fake-auth0",
                "--listen",
                self.domain,
                "--tls-dir",
                str(self.tmp / "tls"),
                "--seed",
                str(seed),
                "--rate-limit",
                "100",
                "--burst",
                "100",
            ]
        )
        self.ca = self.tmp / "tls" / "ca.crt"
        _wait(lambda: self.ca.exists(), 30)
        time.sleep(1)
        self.http = httpx.Client(
            base_url=f"https://{self.domain}",
            verify=ssl.create_default_context(cafile=str(self.ca)),
        )

    def stop(self) -> None:
        """Stop the processes this benchmark started."""
        self.processes.stop()

    def secret_of(self, client_id: str) -> str:
        """The fake's current secret of a client."""
        value: str = self.http.get(f"/_fake/clients/{client_id}").json()["client_secret"]
        return value

    def token(self) -> str:
        """A management token (the floor and runbook reuse it)."""
        resp = self.http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "m2m",
                "client_secret": "m" * 48,
                "audience": self.audience,
            },
        )
        value: str = resp.json()["access_token"]
        return value

    def setup_cluster(self, restart_window: float) -> None:
        """CRDs, tenant, three Deployments and the operator process."""
        self.plane.kubectl_run("apply", "-f", str(REPO / "crds"))
        self.plane.kubectl_run(
            "wait", "--for=condition=Established", "crd/auth0clientsecrets.auth0rotator.dev"
        )
        self.core.create_namespace({"metadata": {"name": NS}})
        self.core.create_namespaced_secret(
            NS,
            {
                "metadata": {"name": "creds", "labels": {"auth0rotator.dev/credentials": "true"}},
                "stringData": {"client_id": "m2m", "client_secret": "m" * 48},
            },
        )
        self.custom.create_namespaced_custom_object(
            "auth0rotator.dev",
            "v1alpha1",
            NS,
            "auth0tenants",
            {
                "apiVersion": "auth0rotator.dev/v1alpha1",
                "kind": "Auth0Tenant",
                "metadata": {"name": "default"},
                "spec": {
                    "domain": self.domain,
                    "credentials": {"secretRef": {"name": "creds"}},
                    "rateLimit": {"requestsPerSecond": 100, "burst": 100},
                },
            },
        )
        for name in DEPLOYMENTS:
            self.apps.create_namespaced_deployment(
                NS,
                {
                    "metadata": {"name": name},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {"app": name}},
                        "template": {
                            "metadata": {"labels": {"app": name}},
                            "spec": {"containers": [{"name": "a", "image": "registry.invalid/a"}]},
                        },
                    },
                },
            )
        self.processes.spawn(
            [
                sys.executable,
                "-m",
                "auth0_rotator.cli",
                "run",
                "-n",
                NS,
                "--identity",
                "bench",
                "--extra-ca-file",
                str(self.ca),
                "--allowed-domain",
                self.domain,
                "--metrics",
                "",
                "--liveness",
                "",
                "--restart-window",
                str(restart_window),
            ],
            env={"KUBECONFIG": str(self.plane.kubeconfig)},
        )
        self.core.create_namespace({"metadata": {"name": JOURNAL_NS}})
        self.journal_version = self.custom.create_namespaced_custom_object(
            "auth0rotator.dev",
            "v1alpha1",
            JOURNAL_NS,
            "auth0clientsecrets",
            {
                "apiVersion": "auth0rotator.dev/v1alpha1",
                "kind": "Auth0ClientSecret",
                "metadata": {"name": "safe"},
                "spec": {"clientId": "app-safe", "secretName": "safe"},
            },
        )["metadata"]["resourceVersion"]
        self.custom.create_namespaced_custom_object(
            "auth0rotator.dev",
            "v1alpha1",
            NS,
            "auth0clientsecrets",
            {
                "apiVersion": "auth0rotator.dev/v1alpha1",
                "kind": "Auth0ClientSecret",
                "metadata": {"name": "op"},
                "spec": {
                    "clientId": "app-operator",
                    "secretName": "op",
                    "restartTargets": [{"kind": "Deployment", "name": "web-operator"}],
                },
            },
        )
        _wait(lambda: self._secret("op") == self.secret_of("app-operator"), 60)
        for name in DEPLOYMENTS:

            def rolled(n: str = name) -> bool:
                return self._rolled_out(n)

            _wait(rolled, 60)

    def _secret(self, name: str) -> str | None:
        try:
            data = self.core.read_namespaced_secret(name, NS).data or {}
        except client.exceptions.ApiException:
            return None
        raw = data.get("client_secret")
        return base64.b64decode(raw).decode() if raw else None

    def _template(self, name: str) -> dict[str, str]:
        annotations = self.apps.read_namespaced_deployment(
            name, NS
        ).spec.template.metadata.annotations
        return dict(annotations or {})

    def _rolled_out(self, name: str) -> bool:
        d: Any = self.apps.read_namespaced_deployment(name, NS)
        s, want = d.status, d.spec.replicas
        return bool(
            (s.observed_generation or 0) >= d.metadata.generation
            and s.updated_replicas == want
            and s.available_replicas == want
            and (s.replicas or 0) == want
        )

    def _watch(
        self, list_fn: Callable[..., Any], name: str, done: Callable[[Any], bool]
    ) -> Callable[[], float]:
        """Watch one object from now on; return a waiter giving when ``done`` first held.

        A watch, not polling: the benchmark must not load the 2-core machine it
        measures. Events are timestamped on arrival; starting at the current
        resourceVersion means none is missed however late the stream connects.
        """
        rv = list_fn(NS, field_selector=f"metadata.name={name}").metadata.resource_version
        seen: list[float] = []

        def run() -> None:
            watcher: Any = watch.Watch
            stream = watcher().stream(
                list_fn,
                NS,
                field_selector=f"metadata.name={name}",
                resource_version=rv,
                timeout_seconds=60,
            )
            for event in stream:
                if done(event["object"]):
                    seen.append(time.monotonic())
                    return

        thread = threading.Thread(target=run, daemon=True)
        thread.start()

        def wait() -> float:
            thread.join(65)
            if not seen:
                raise TimeoutError(f"{name}: no matching event within 60 s")
            return seen[0]

        return wait

    def operator_once(self, i: int) -> tuple[float, float, float]:
        """One rotation through the operator; seconds to (a), (b), (c)."""
        before = self._template("web-operator").get(REVISION)
        old = self._secret("op")

        def written(secret: Any) -> bool:
            raw: str | None = (secret.data or {}).get("client_secret")
            return raw is not None and base64.b64decode(raw).decode() != old

        def patched(deployment: Any) -> bool:
            annotations = deployment.spec.template.metadata.annotations or {}
            return annotations.get(REVISION) not in (None, before)

        wait_a = self._watch(self.core.list_namespaced_secret, "op", written)
        wait_b = self._watch(self.apps.list_namespaced_deployment, "web-operator", patched)
        time.sleep(0.3)  # let both streams connect (nothing would be missed anyway)
        t0 = time.monotonic()
        self.custom.patch_namespaced_custom_object(
            "auth0rotator.dev",
            "v1alpha1",
            NS,
            "auth0clientsecrets",
            "op",
            {"metadata": {"annotations": {"auth0rotator.dev/rotate": f"b{i}"}}},
        )
        a, b = wait_a(), wait_b()
        c = _wait(lambda: self._rolled_out("web-operator"))
        if self._secret("op") != self.secret_of("app-operator"):
            raise AssertionError("the Secret does not hold the value Auth0 has")
        return a - t0, b - t0, c - t0

    def _set_in_auth0(self, client_id: str, value: str, token: str) -> None:
        self.http.patch(
            f"/api/v2/clients/{client_id}",
            json={"client_secret": value},
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()

    def _put_secret(self, namespace: str, name: str, value: str) -> None:
        body = {"metadata": {"name": name}, "stringData": {"client_secret": value}}
        try:
            self.core.replace_namespaced_secret(name, namespace, body)
        except client.exceptions.ApiException:
            self.core.create_namespaced_secret(namespace, body)

    def floor_once(self, i: int, token: str) -> tuple[float, float, float]:
        """One rotation with direct calls; seconds to (a), (b), (c)."""
        t0 = time.monotonic()
        value = base64.urlsafe_b64encode(os.urandom(48)).decode()
        self._set_in_auth0("app-floor", value, token)
        self._put_secret(NS, "floor", value)
        a = time.monotonic()
        self.apps.patch_namespaced_deployment(
            "web-floor",
            NS,
            {"spec": {"template": {"metadata": {"annotations": {REVISION: f"f{i}"}}}}},
        )
        b = time.monotonic()
        c = _wait(lambda: self._rolled_out("web-floor"))
        return a - t0, b - t0, c - t0

    def _journal(self, phase: str | None, rotation_id: str) -> None:
        """A resourceVersion-checked status write of the crash-safe floor's journal."""
        rotation = None if phase is None else {"id": rotation_id, "phase": phase}
        self.journal_version = self.custom.patch_namespaced_custom_object_status(
            "auth0rotator.dev",
            "v1alpha1",
            JOURNAL_NS,
            "auth0clientsecrets",
            "safe",
            {
                "metadata": {"resourceVersion": self.journal_version},
                "status": {"rotation": rotation},
            },
        )["metadata"]["resourceVersion"]

    def safe_floor_once(self, i: int, token: str) -> tuple[float, float, float]:
        """One rotation with the crash-safe minimum of direct calls; seconds to (a), (b), (c)."""
        rotation_id = f"s{i}"
        t0 = time.monotonic()
        value = base64.urlsafe_b64encode(os.urandom(48)).decode()
        self.core.create_namespaced_secret(
            JOURNAL_NS, {"metadata": {"name": "staging"}, "stringData": {"value": value}}
        )
        self._journal("Staged", rotation_id)
        self._set_in_auth0("app-safe", value, token)
        self.http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "app-safe",
                "client_secret": value,
                "audience": self.audience,
            },
        )
        self._journal("Verified", rotation_id)
        self._put_secret(JOURNAL_NS, "safe", value)
        a = time.monotonic()
        self.apps.patch_namespaced_deployment(
            "web-safe",
            NS,
            {"spec": {"template": {"metadata": {"annotations": {REVISION: rotation_id}}}}},
        )
        b = time.monotonic()
        # Closing the journal and removing the staging Secret come after (b), as in the operator.
        self._journal(None, rotation_id)
        self.core.delete_namespaced_secret("staging", JOURNAL_NS)
        c = _wait(lambda: self._rolled_out("web-safe"))
        return a - t0, b - t0, c - t0

    def runbook_once(self, token: str) -> tuple[float, float, float]:
        """One rotation the manual way; seconds to (a), (b), (c)."""
        kubectl = [str(self.plane.kubectl), "--kubeconfig", str(self.plane.kubeconfig), "-n", NS]
        t0 = time.monotonic()
        out = subprocess.run(
            [
                "curl",
                "-s",
                "--cacert",
                str(self.ca),
                "-X",
                "POST",
                "-H",
                f"Authorization: Bearer {token}",
                f"https://{self.domain}/api/v2/clients/app-runbook/rotate-secret",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        value = json.loads(out)["client_secret"]
        manifest = subprocess.run(
            [
                *kubectl,
                "create",
                "secret",
                "generic",
                "runbook",
                f"--from-literal=client_secret={value}",
                "--dry-run=client",
                "-o",
                "yaml",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        subprocess.run(
            [*kubectl, "apply", "-f", "-"],
            input=manifest,
            capture_output=True,
            text=True,
            check=True,
        )
        a = time.monotonic()
        subprocess.run(
            [*kubectl, "rollout", "restart", "deployment/web-runbook"],
            capture_output=True,
            check=True,
        )
        b = time.monotonic()
        c = _wait(lambda: self._rolled_out("web-runbook"))
        return a - t0, b - t0, c - t0


def main() -> None:
    """Run the three variants and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=30)
    parser.add_argument("--restart-window", type=float, default=0.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    bins = (
        os.environ.get("AUTH0_ROTATOR_KUBE_BIN")
        or subprocess.run(
            ["bash", str(REPO / "hack" / "kube-bins.sh")],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        plane = ControlPlane(Path(bins), tmp / "cluster", nodes=1).start()
        bench = Bench(plane, tmp)
        try:
            bench.start_fake()
            bench.setup_cluster(args.restart_window)
            token = bench.token()
            runs: dict[str, list[tuple[float, float, float]]] = {
                "operator": [],
                "floor": [],
                "runbook": [],
                "crash_safe_floor": [],
            }
            for i in range(args.rotations):
                runs["operator"].append(bench.operator_once(i))
                runs["floor"].append(bench.floor_once(i, token))
                runs["runbook"].append(bench.runbook_once(token))
                runs["crash_safe_floor"].append(bench.safe_floor_once(i, token))
        finally:
            bench.stop()
            plane.stop()
    figures: dict[str, Any] = {}
    for name, samples in runs.items():
        figures[name] = {
            step: {
                "p50": _pct([s[k] for s in samples], 0.5),
                "p95": _pct([s[k] for s in samples], 0.95),
                "mean": round(statistics.fmean(s[k] for s in samples), 3),
            }
            for k, step in enumerate(
                ("a_secret_written", "b_template_patched", "c_rollout_complete")
            )
        }
    b = {n: figures[n]["b_template_patched"]["p50"] for n in figures}
    result = {
        "scenario": {
            "rotations": args.rotations,
            "restart_window_seconds": args.restart_window,
            "verification": True,
            "replicas": 1,
        },
        "seconds": figures,
        "b_p50_operator_over_floor": round(b["operator"] / b["floor"], 2),
        "b_p50_operator_over_runbook": round(b["operator"] / b["runbook"], 3),
        "b_p50_operator_over_crash_safe_floor": round(b["operator"] / b["crash_safe_floor"], 2),
        "goals": {"b_p50_operator_over_floor": "<= 2", "b_p50_operator_over_runbook": "< 0.2"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    text = json.dumps(result, indent=2)
    print(text)
    args.output.write_text(text + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
