"""Benchmark: what consumers feel — failed authentications and outage per rotation, every mode.

One local control plane, one fake Auth0 tenant (propagation delay 5 s) and
one ``auth0-rotator run`` process, all on 127.0.0.1. Each mode rotates the
secret of its own application 10 times; its Deployment (3 replicas,
``maxSurge: 1``, ``maxUnavailable: 0``) restarts, and kwok makes each new
pod Ready only 3 to 5 s after it is created (a Stage delay used in this
benchmark only), so a rollout takes about as long as a small service's.

The consumer model is in ``consumer_model.py``: one consumer per pod holds
the credentials its pod was created with and asks ``/oauth/token`` 5 times a
second by the mode's rule; every refusal is a failed authentication. A second
column applies mounted-file semantics (the Secret as it was 60 s earlier).

Modes: ``runbook`` (``curl`` rotate-secret, ``kubectl create secret … |
kubectl apply``, ``kubectl rollout restart``), ``Rotate``, ``Generate``,
``Announce`` (``Generate`` with ``announce: true``) and ``KeyPair``.

Then, as controls, ``Generate`` and ``Announce`` again with a propagation
delay of 0 (Auth0 accepts a new secret at once), which separates Auth0's
share of an outage from the operator's and the rollout's.

Usage: python benchmarks/consumer_impact.py [--rotations 10] [--propagation 5] [--no-controls]
Writes benchmarks/results/consumer_impact.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config

from auth0_rotator.keypairs import ASSERTION_TYPE, sign_assertion
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator_dev.devcluster import ControlPlane, kube_bin_dir
from auth0_rotator_dev.devcluster.cluster import free_port
from consumer_model import FILE_LAG, TICK, Consumers, Credential, Unanswered, figures
from processes import Processes

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "consumer_impact.json"
NS = "consumers"
MODES = ("runbook", "Rotate", "Generate", "Announce", "KeyPair")
SPECS: dict[str, dict[str, Any]] = {
    "Rotate": {"strategy": "Rotate"},
    "Generate": {"strategy": "Generate"},
    "Announce": {"strategy": "Generate", "announce": True},
    "KeyPair": {"strategy": "KeyPair", "keyPair": {"algorithm": "RS256", "size": 2048}},
}
CONTROLS = ("Generate", "Announce")
"""Modes measured again with no propagation delay."""
REPLICAS = 3
READY_DELAY_MS = (3000, 5000)
SETTLE = 3.0
"""Seconds every rotation's window goes on after it finished (late failures count)."""
M2M_SECRET = "m" * 48


def ready_delay_stages(source: Path, target: Path, low_ms: int, high_ms: int) -> Path:
    """The stages of kwok, with pods becoming Ready ``low_ms`` to ``high_ms`` after creation."""
    text = source.read_text()
    marker = "  name: pod-ready\nspec:\n"
    if marker not in text:
        raise SystemExit(f"no pod-ready stage in {source}")
    delay = (
        f"  delay:\n    durationMilliseconds: {low_ms}\n    jitterDurationMilliseconds: {high_ms}\n"
    )
    target.write_text(text.replace(marker, marker + delay))
    return target


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s: {what}")


class Bench:
    """The control plane, the fake tenant, the operator, and the ways of rotating."""

    def __init__(self, plane: ControlPlane, tmp: Path, propagation: float) -> None:
        self.plane, self.tmp, self.propagation = plane, tmp, propagation
        self.port = free_port()
        self.domain = f"127.0.0.1:{self.port}"
        self.audience = f"https://{self.domain}/api/v2/"
        new_client: Any = config.new_client_from_config
        self.api = new_client(config_file=str(plane.kubeconfig))
        self.core: Any = client.CoreV1Api(self.api)
        self.apps: Any = client.AppsV1Api(self.api)
        self.custom: Any = client.CustomObjectsApi(self.api)
        self.processes = Processes(tmp)
        self.token_http: httpx.Client | None = None

    # -- processes ---------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the processes this benchmark started."""
        self.processes.stop()

    def start_fake(self) -> None:
        """The fake tenant: a management application and one application per mode."""
        scopes = ["read:client_keys", "update:client_keys"] + [
            f"{verb}:client_credentials" for verb in ("read", "create", "update", "delete")
        ]
        clients: list[dict[str, Any]] = [
            {"client_id": "m2m", "client_secret": M2M_SECRET, "grants": {self.audience: scopes}}
        ]
        clients += [{"client_id": f"app-{m.lower()}"} for m in MODES if m != "KeyPair"]
        clients.append({"client_id": "app-keypair", "private_key_jwt": True})
        seed = self.tmp / "seed.json"
        seed.write_text(json.dumps({"clients": clients}))
        self.processes.spawn(
            [sys.executable, "-m", "auth0_rotator.cli", "fake-auth0", "--listen", self.domain,
             "--tls-dir", str(self.tmp / "tls"), "--seed", str(seed),
             "--rate-limit", "1000", "--burst", "1000"]
        )  # fmt: skip
        self.ca = self.tmp / "tls" / "ca.crt"
        _wait(self.ca.exists, 30, "the fake tenant's CA")
        tls = ssl.create_default_context(cafile=str(self.ca))
        self.http = httpx.Client(base_url=f"https://{self.domain}", verify=tls, timeout=10)
        _wait(lambda: self._answers(), 30, "the fake tenant")
        self.http.put("/_fake/settings", json={"propagation_delay": self.propagation})
        self.token_http = httpx.Client(base_url=f"https://{self.domain}", verify=tls, timeout=5)

    def _answers(self) -> bool:
        try:
            return self.http.get("/_fake/settings").status_code == 200
        except httpx.HTTPError:
            return False

    def setup_cluster(self) -> None:
        """CRDs, the tenant, one Deployment and (but for the runbook) one resource per mode."""
        self.plane.kubectl_run("apply", "-f", str(REPO / "crds"))
        self.plane.kubectl_run(
            "wait", "--for=condition=Established", "crd/auth0clientsecrets.auth0rotator.dev"
        )
        self.core.create_namespace({"metadata": {"name": NS}})
        self.core.create_namespaced_secret(
            NS,
            {
                "metadata": {"name": "creds", "labels": {"auth0rotator.dev/credentials": "true"}},
                "stringData": {"client_id": "m2m", "client_secret": M2M_SECRET},
            },
        )
        self._create("auth0tenants", "Auth0Tenant", "default", {
            "domain": self.domain,
            "credentials": {"secretRef": {"name": "creds"}},
            "rateLimit": {"requestsPerSecond": 100, "burst": 100},
        })  # fmt: skip
        runbook_value = self.http.get("/_fake/clients/app-runbook").json()["client_secret"]
        self.core.create_namespaced_secret(
            NS, {"metadata": {"name": "runbook"}, "stringData": {"client_secret": runbook_value}}
        )
        for mode in MODES:
            self._deployment(mode)
        self.processes.spawn(
            [sys.executable, "-m", "auth0_rotator.cli", "run", "-n", NS, "--identity", "bench",
             "--extra-ca-file", str(self.ca), "--allowed-domain", self.domain,
             "--metrics", "", "--liveness", "", "--restart-window", "0"],
            env={"KUBECONFIG": str(self.plane.kubeconfig)},
        )  # fmt: skip
        for mode, spec in SPECS.items():
            self._create("auth0clientsecrets", "Auth0ClientSecret", self.resource(mode), {
                "clientId": f"app-{mode.lower()}",
                "secretName": self.resource(mode),
                "restartTargets": [{"kind": "Deployment", "name": self.resource(mode)}],
                **spec,
            })  # fmt: skip
        for mode in MODES:
            _wait(partial(self.settled, mode), 180, f"{mode}: first Secret and rollout")

    def _create(self, plural: str, kind: str, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": "auth0rotator.dev/v1alpha1", "kind": kind,
                "metadata": {"name": name}, "spec": spec}  # fmt: skip
        group = ("auth0rotator.dev", "v1alpha1", NS, plural)
        self.custom.create_namespaced_custom_object(*group, body)

    @staticmethod
    def resource(mode: str) -> str:
        """The mode's Auth0ClientSecret, Secret and Deployment name."""
        return mode.lower()

    def _deployment(self, mode: str) -> None:
        name = self.resource(mode)
        self.apps.create_namespaced_deployment(NS, {
            "metadata": {"name": name},
            "spec": {
                "replicas": REPLICAS,
                "selector": {"matchLabels": {"app": name}},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "a", "image": "registry.invalid/a"}]},
                },
            },
        })  # fmt: skip

    # -- reads -------------------------------------------------------------------------

    def secret_data(self, mode: str) -> dict[str, str]:
        """The mode's target Secret, decoded ({} while it does not exist)."""
        try:
            raw = self.core.read_namespaced_secret(self.resource(mode), NS).data or {}
        except client.ApiException:
            return {}
        return {k: base64.b64decode(v).decode() for k, v in raw.items()}

    def pods(self, mode: str) -> list[str]:
        """Uids of the mode's pods that exist and are not being deleted."""
        listed = self.core.list_namespaced_pod(NS, label_selector=f"app={self.resource(mode)}")
        return [p.metadata.uid for p in listed.items if not p.metadata.deletion_timestamp]

    def rolled_out(self, mode: str) -> str | None:
        """The Deployment's secret revision once its rollout is complete."""
        d: Any = self.apps.read_namespaced_deployment(self.resource(mode), NS)
        s = d.status
        done = (
            (s.observed_generation or 0) >= d.metadata.generation
            and s.updated_replicas == REPLICAS
            and s.available_replicas == REPLICAS
            and (s.replicas or 0) == REPLICAS
        )
        annotations = d.spec.template.metadata.annotations or {}
        return str(annotations.get("auth0rotator.dev/secret-revision", "-")) if done else None

    def status(self, mode: str) -> dict[str, Any]:
        """The mode's resource status."""
        obj = self.custom.get_namespaced_custom_object(
            "auth0rotator.dev", "v1alpha1", NS, "auth0clientsecrets", self.resource(mode)
        )
        return dict(obj.get("status") or {})

    def settled(self, mode: str, request: str = "") -> bool:
        """Nothing of the mode's rotation still in flight."""
        revision = self.rolled_out(mode)
        if revision is None or not self.secret_data(mode):
            return False
        if mode == "runbook":
            return True
        status = self.status(mode)
        if status.get("rotation") or (request and status.get("lastRotateRequest") != request):
            return False
        if mode == "KeyPair" and len(self._keys()) != 1:
            return False
        return revision == status.get("secretRevision", "-") or not request

    def _retired(self, keys: set[str]) -> float | None:
        """When none of ``keys`` is registered any more (monotonic time), else ``None``."""
        return None if keys & {k["id"] for k in self._keys()} else time.monotonic()

    def _finished(self, mode: str, request: str) -> float | None:
        """When the rotation of ``request`` is settled (monotonic time), else ``None``."""
        return time.monotonic() if self.settled(mode, request) else None

    def _keys(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.http.get("/_fake/clients/app-keypair").json()[
            "credentials"
        ]
        return found

    def authenticates(self, mode: str, credential: Credential) -> bool:
        """Whether Auth0 authenticates the mode's application with ``credential`` now."""
        assert self.token_http is not None
        client_id = f"app-{mode.lower()}"
        form = {"grant_type": "client_credentials", "client_id": client_id,
                "audience": self.audience}  # fmt: skip
        if credential[0] == "secret":
            form["client_secret"] = credential[1]
        else:
            _, pem, kid, alg = credential
            assertion = sign_assertion(
                SecretValue(pem), algorithm=alg, client_id=client_id, domain=self.domain,
                key_id=kid or None,
            )  # fmt: skip
            form |= {"client_assertion_type": ASSERTION_TYPE,
                     "client_assertion": assertion.reveal()}  # fmt: skip
        code = self.token_http.post("/oauth/token", data=form).status_code
        if code not in (200, 401, 403):
            raise Unanswered(f"the token endpoint answered {code}")
        return code != 401

    # -- rotating ----------------------------------------------------------------------

    def trigger(self, mode: str, request: str, token: str) -> None:
        """Start one rotation of ``mode``."""
        if mode == "runbook":
            self._runbook(token)
            return
        self.custom.patch_namespaced_custom_object(
            "auth0rotator.dev", "v1alpha1", NS, "auth0clientsecrets", self.resource(mode),
            {"metadata": {"annotations": {"auth0rotator.dev/rotate": request}}},
        )  # fmt: skip

    def _runbook(self, token: str) -> None:
        kubectl = [str(self.plane.kubectl), "--kubeconfig", str(self.plane.kubeconfig), "-n", NS]
        out = subprocess.run(
            ["curl", "-s", "--cacert", str(self.ca), "-X", "POST",
             "-H", f"Authorization: Bearer {token}",
             f"https://{self.domain}/api/v2/clients/app-runbook/rotate-secret"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        value = json.loads(out)["client_secret"]
        manifest = subprocess.run(
            [*kubectl, "create", "secret", "generic", "runbook",
             f"--from-literal=client_secret={value}", "--dry-run=client", "-o", "yaml"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        subprocess.run([*kubectl, "apply", "-f", "-"], input=manifest, capture_output=True,
                       text=True, check=True)  # fmt: skip
        subprocess.run([*kubectl, "rollout", "restart", "deployment/runbook"],
                       capture_output=True, check=True)  # fmt: skip

    def token(self) -> str:
        """A management token for the runbook's curl."""
        resp = self.http.post("/oauth/token", data={
            "grant_type": "client_credentials", "client_id": "m2m",
            "client_secret": M2M_SECRET, "audience": self.audience})  # fmt: skip
        return str(resp.json()["access_token"])

    def run_mode(self, mode: str, rotations: int, token: str) -> dict[str, Any]:
        """Rotate ``mode`` ``rotations`` times with its consumers asking; its figures."""
        consumers = Consumers(self, mode)
        thread = threading.Thread(target=consumers.run, daemon=True)
        thread.start()
        time.sleep(2 * TICK)
        windows: list[tuple[float, float]] = []
        complete: list[float] = []
        old_key_gone: list[float] = []
        for i in range(rotations):
            request = f"{mode.lower()}-{i}-{time.time():.0f}"
            keys = {k["id"] for k in self._keys()} if mode == "KeyPair" else set()
            started = time.monotonic()
            self.trigger(mode, request, token)
            if mode == "KeyPair":
                gone = _wait(partial(self._retired, keys), 180, "the old key deleted")
                old_key_gone.append(gone - started)
            finished = _wait(partial(self._finished, mode, request), 180, f"{mode} #{i}")
            complete.append(finished - started)
            time.sleep(SETTLE)
            windows.append((started, time.monotonic()))
            print(f"  {mode} #{i + 1}: done in {finished - started:.1f}s", flush=True)
        consumers.stop.set()
        thread.join(10)
        return figures(mode, consumers, windows, complete, old_key_gone)


def main() -> None:
    """Run every mode and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=10)
    parser.add_argument("--propagation", type=float, default=5.0, help="seconds (fake tenant)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument(
        "--no-controls",
        dest="controls",
        action="store_false",
        help="skip the propagation-0 controls (Generate and Announce again)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    bins = kube_bin_dir()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        stages = ready_delay_stages(
            bins.parent / "kwok-stages.yaml", tmp / "kwok-stages.yaml", *READY_DELAY_MS
        )
        plane = ControlPlane(bins, tmp / "cluster", nodes=1, kwok_stages=stages).start()
        bench = Bench(plane, tmp, args.propagation)
        try:
            bench.start_fake()
            bench.setup_cluster()
            token = bench.token()
            scenarios = {}
            for mode in modes:
                print(f"{mode}: {args.rotations} rotations", flush=True)
                scenarios[mode] = bench.run_mode(mode, args.rotations, token)
            # Controls: the same modes where Auth0 accepts a new secret at once, to
            # separate Auth0's propagation from what the operator and the rollout cost.
            controls = {}
            bench.http.put("/_fake/settings", json={"propagation_delay": 0.0})
            for mode in [m for m in CONTROLS if m in modes and args.controls]:
                print(f"{mode}, propagation 0 s: {args.rotations} rotations", flush=True)
                controls[f"{mode}, propagation 0 s"] = bench.run_mode(mode, args.rotations, token)
        finally:
            bench.stop()
            plane.stop()
    result = {
        "scenarios": scenarios,
        "controls": controls,
        "settings": {
            "rotations_per_mode": args.rotations,
            "replicas": REPLICAS,
            "rolling_update": {"maxSurge": 1, "maxUnavailable": 0},
            "pod_ready_delay_seconds": [READY_DELAY_MS[0] / 1000, READY_DELAY_MS[1] / 1000],
            "requests_per_second_per_pod": 1 / TICK,
            "propagation_delay_seconds": args.propagation,
            "mounted_file_lag_seconds": FILE_LAG,
            "window_after_each_rotation_seconds": SETTLE,
            "restart_window_seconds": 0,
        },
        "run_seconds": round(time.monotonic() - started),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    text = json.dumps(result, indent=2)
    print(text)
    args.output.write_text(text + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
