"""``make demo``: one rotation end to end on this machine, narrated.

Starts the local control plane, the fake Auth0 tenant and the operator (with
leader election), applies ``examples/`` (tenant, Deployment, client secret),
forces a rotation with the annotation a kubectl user would set, and shows what
happens: the journal's phases, the Secret changing, Auth0 accepting the new
secret and refusing the old one, the Deployment rolling to new pods. Then it
stops everything it started, or with ``--keep`` stays up until Ctrl-C.

Secret values are never printed: only a short SHA-256 fingerprint, to show
that the value changed and that the Secret and Auth0 agree.

With ``--announce`` it goes on with an announced rotation of the same secret
(:mod:`.announce_story`), with ``--key-pair`` with a zero-downtime ``KeyPair``
rotation (:mod:`.keypair_story`).

    python -m auth0_rotator_dev.devcluster.demo [--keep] [--announce] [--key-pair]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from kubernetes import client, config, watch

from auth0_rotator_dev.devcluster import ControlPlane, ControlPlaneError, kube_bin_dir
from auth0_rotator_dev.devcluster.announce_story import AnnounceStory
from auth0_rotator_dev.devcluster.keypair_story import KeyPairStory
from auth0_rotator_dev.devcluster.narration import (
    DemoError,
    Narrator,
    fingerprint,
    repo_root,
    wait_until,
)
from auth0_rotator_dev.devcluster.processes import ManagedProcess, log_tail

__all__ = ["main"]

T = TypeVar("T")
NAMESPACE = "demo"
EXAMPLE_PORT = 18443
"""The port ``examples/`` name for the local fake tenant."""
CLIENT_ID = "orders-api-client"


class Demo:
    """The running pieces and the narrated story."""

    def __init__(self, state_dir: Path, auth0_port: int, say: Narrator) -> None:
        self.state_dir = state_dir
        self.port = auth0_port
        self.say = say
        self.repo = repo_root()
        self.plane = ControlPlane(kube_bin_dir(), state_dir / "cluster")
        self.extra: list[ManagedProcess] = []
        self.http: httpx.Client | None = None
        self._watch_from = ""

    # -- plumbing ------------------------------------------------------------------------

    def kubectl(self, *args: str, show: bool = False) -> str:
        """Run kubectl as admin; with ``show``, print the command as a user would type it."""
        if show:
            self.say.detail("$ kubectl " + " ".join(shlex.quote(a) for a in args))
        return self.plane.kubectl_run(*args)

    def get_json(self, *args: str) -> dict[str, Any]:
        """``kubectl get ... -o json`` as a dict."""
        data: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json"))
        return data

    def a0cs_status(self) -> dict[str, Any]:
        """The status of the example Auth0ClientSecret."""
        status: dict[str, Any] = (
            self.get_json("-n", NAMESPACE, "a0cs", "orders-api").get("status") or {}
        )
        return status

    def secret_value(self) -> str | None:
        """client_secret from the target Secret (kept in memory, never printed)."""
        try:
            data = self.get_json("-n", NAMESPACE, "secret", "orders-api-auth0").get("data") or {}
        except ControlPlaneError:
            return None
        raw = data.get("client_secret")
        return base64.b64decode(raw).decode() if raw else None

    def _example(self, name: str) -> Path:
        """An example file; rewritten into the state dir when the tenant port differs."""
        path = self.repo / "examples" / name
        if self.port == EXAMPLE_PORT:
            return path
        copy = self.state_dir / name
        copy.write_text(
            path.read_text().replace(f"127.0.0.1:{EXAMPLE_PORT}", f"127.0.0.1:{self.port}")
        )
        return copy

    def _start(self, name: str, *args: str) -> ManagedProcess:
        proc = ManagedProcess.start(
            name,
            [sys.executable, "-m", "auth0_rotator.cli", *args],
            self.state_dir,
            env={"KUBECONFIG": str(self.plane.kubeconfig)},
        )
        self.extra.append(proc)
        return proc

    def _logged(self, proc: ManagedProcess, text: str) -> bool:
        """Whether ``proc`` logged ``text`` yet; an exited process is an error."""
        if not proc.alive():
            raise DemoError(f"{proc.name} exited:\n{log_tail(proc.log_path, 30)}")
        return text in proc.log_path.read_text()

    # -- the story -----------------------------------------------------------------------

    def start_everything(self) -> None:
        """Control plane, fake Auth0, CRDs, operator."""
        self.say.step("Starting a local Kubernetes control plane on 127.0.0.1")
        self.say.detail("etcd, kube-apiserver, controller-manager, scheduler, kwok (fake nodes)")
        self.plane.start()
        self.say.detail(f"API server {self.plane.server}")

        self.say.step(f"Starting the fake Auth0 tenant on https://127.0.0.1:{self.port}")
        fake = self._start(
            "fake-auth0",
            "fake-auth0",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--tls-dir",
            str(self.state_dir / "fake-tls"),
            "--seed",
            str(self._example("fake-auth0-seed.json")),
        )
        wait_until(
            lambda: self._logged(fake, "serving at"),
            30,
            "the fake tenant",
        )
        ca = self.state_dir / "fake-tls" / "ca.crt"
        self.http = httpx.Client(base_url=f"https://127.0.0.1:{self.port}", verify=str(ca))
        self.say.detail("seeded from examples/fake-auth0-seed.json (orders-api-client and more)")

        self.say.step("Installing the CRDs and starting the operator")
        self.kubectl("apply", "-f", str(self.repo / "crds"), show=True)
        self.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all", show=True
        )
        self.kubectl("create", "namespace", NAMESPACE, show=True)
        operator = self._start(
            "operator",
            "run",
            "--namespace",
            NAMESPACE,
            "--extra-ca-file",
            str(ca),
            "--leader-elect",
            "--lease-namespace",
            NAMESPACE,
            "--identity",
            "demo-operator",
            # Credentials go only to allowed domains (default: Auth0's); this is the fake.
            "--allowed-domain",
            f"127.0.0.1:{self.port}",
            "--restart-window",
            "0",
            "--liveness",
            "",
            "--metrics",
            "",
        )
        wait_until(
            lambda: self._logged(operator, "became leader"),
            60,
            "the operator to take its Lease",
        )
        self.say.detail(
            f"auth0-rotator run --namespace {NAMESPACE} --leader-elect "
            f"--allowed-domain 127.0.0.1:{self.port}  "
            f"(holds Lease {NAMESPACE}/auth0-rotator; log: {operator.log_path})"
        )

    def apply_examples(self) -> str:
        """Tenant, Deployment, client secret; returns the fetched value."""
        self.say.step("Applying examples/: a tenant, a Deployment, an Auth0ClientSecret")
        for name in ("auth0tenant.yaml", "orders-api.yaml", "auth0clientsecret.yaml"):
            self.kubectl("apply", "-n", NAMESPACE, "-f", str(self._example(name)), show=True)

        def fetched() -> dict[str, Any] | None:
            status = self.a0cs_status()
            ready: dict[str, Any] = next(
                (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {}
            )
            return ready if ready.get("reason") == "Fetched" else None

        ready = wait_until(fetched, 60, "Ready=True Fetched")
        value = wait_until(self.secret_value, 10, "the Secret orders-api-auth0")
        self.say.detail(f"Ready=True Fetched: {ready.get('message')}")
        self.say.detail(
            f"Secret orders-api-auth0 holds Auth0's current secret ({fingerprint(value)})"
        )
        pods = self._wait_rollout(None)
        self.say.detail(f"Deployment orders-api: {len(pods)} pods Ready ({', '.join(pods)})")
        print(self.kubectl("get", "-n", NAMESPACE, "a0cs"), end="", flush=True)
        return value

    def rotate(self, old: str) -> None:
        """Force a rotation and follow it to the rolled-out Deployment."""
        self.say.step("Forcing a rotation, as a kubectl user would")
        request = str(int(time.time()))
        rv = self.get_json("-n", NAMESPACE, "a0cs", "orders-api")["metadata"]["resourceVersion"]
        self._watch_from = rv
        self.kubectl(
            "annotate",
            "-n",
            NAMESPACE,
            "a0cs",
            "orders-api",
            f"auth0rotator.dev/rotate={request}",
            "--overwrite",
            show=True,
        )
        status = self._follow_journal(request)
        ready: dict[str, Any] = next(
            (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {}
        )
        self.say.detail(
            f"Ready={ready.get('status')} {ready.get('reason')}: {ready.get('message')}"
        )
        new = wait_until(self.secret_value, 10, "the new Secret value")
        if new == old:
            raise DemoError("the Secret still holds the old value")
        self.say.detail(
            f"Secret orders-api-auth0 changed: {fingerprint(old)} -> {fingerprint(new)}"
        )

        self.say.step("Asking Auth0 (/oauth/token) about both secrets")
        self.say.detail(f"new secret: {self._token_answer(new)}")
        self.say.detail(f"old secret: {self._token_answer(old)}")

        self.say.step("Watching the Deployment roll to new pods")
        revision = str(status.get("secretRevision"))
        self.say.detail(f"pod template annotated auth0rotator.dev/secret-revision={revision}")
        pods = self._wait_rollout(revision)
        self.say.detail(f"{len(pods)} new pods Ready with that revision: {', '.join(pods)}")
        complete = wait_until(
            lambda: next(
                (
                    c
                    for c in self.a0cs_status().get("conditions") or []
                    if c["type"] == "RolloutComplete" and c["status"] == "True"
                ),
                None,
            ),
            60,
            "RolloutComplete=True",
        )
        self.say.detail(f"RolloutComplete=True: {complete.get('message')}")

    def _follow_journal(self, request: str) -> dict[str, Any]:
        """Print each journal phase as the operator persists it; return the final status."""
        kube = config.new_client_from_config(config_file=str(self.plane.kubeconfig))
        try:
            stream = watch.Watch().stream(
                client.CustomObjectsApi(kube).list_namespaced_custom_object,
                "auth0rotator.dev",
                "v1alpha1",
                NAMESPACE,
                "auth0clientsecrets",
                field_selector="metadata.name=orders-api",
                resource_version=self._watch_from,
                timeout_seconds=90,
            )
            last = None
            for event in stream:
                status = event["object"].get("status") or {}
                journal = status.get("rotation") or {}
                if journal.get("phase") and journal["phase"] != last:
                    last = journal["phase"]
                    self.say.detail(f"journal phase {last} persisted (rotation {journal['id']})")
                if status.get("lastRotateRequest") == request and not journal:
                    found: dict[str, Any] = status
                    return found
        finally:
            kube.close()
        raise DemoError("the rotation did not finish within 90s")

    def _token_answer(self, secret: str) -> str:
        assert self.http is not None  # noqa: S101 - set in start_everything
        response = self.http.post(
            "/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": secret,
                "audience": f"https://127.0.0.1:{self.port}/api/v2/",
            },
        )
        answer = response.json()
        said = f"{answer.get('error', '')}: {answer.get('error_description', '')}"
        if response.status_code == 200:
            return "accepted (HTTP 200, a token)"
        if response.status_code == 403:
            # Authentication passed; only then was the request refused (no API grant).
            return f"accepted (HTTP 403 after authentication, {said})"
        return f"refused (HTTP {response.status_code}, {said})"

    def _wait_rollout(self, revision: str | None) -> list[str]:
        def rolled() -> list[str] | None:
            deployment = self.get_json("-n", NAMESPACE, "deployment", "orders-api")
            spec, st = deployment["spec"], deployment.get("status") or {}
            want = spec.get("replicas", 1)
            settled = (
                st.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
                and st.get("updatedReplicas") == want
                and st.get("readyReplicas") == want
                and st.get("replicas") == want
            )
            if not settled:
                return None
            pods = self.get_json(
                "-n", NAMESPACE, "pods", "-l", "app.kubernetes.io/name=orders-api"
            )["items"]
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            if revision is not None and any(
                (p["metadata"].get("annotations") or {}).get("auth0rotator.dev/secret-revision")
                != revision
                for p in live
            ):
                return None
            return [p["metadata"]["name"] for p in live] if len(live) == want else None

        return wait_until(rolled, 120, "the Deployment's pods")

    def stop(self) -> None:
        """Stop everything this demo started."""
        if self.http is not None:
            self.http.close()
        for proc in reversed(self.extra):
            proc.stop()
        self.plane.stop()


@contextlib.contextmanager
def _state_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="auth0-rotator-demo-") as tmp:
        yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when the rotation was shown end to end."""
    parser = argparse.ArgumentParser(prog="python -m auth0_rotator_dev.devcluster.demo")
    parser.add_argument("--keep", action="store_true", help="stay up until Ctrl-C")
    parser.add_argument(
        "--auth0-port",
        type=int,
        default=EXAMPLE_PORT,
        help="port of the fake tenant (default: %(default)s, as in examples/)",
    )
    parser.add_argument("--state-dir", type=Path, help="default: a temporary directory")
    parser.add_argument(
        "--announce",
        action="store_true",
        help="then an announced rotation of the same client secret (announce: true), timed",
    )
    parser.add_argument(
        "--key-pair",
        action="store_true",
        help="then a zero-downtime KeyPair rotation (examples/keypair.yaml), timed",
    )
    args = parser.parse_args(argv)
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so everything is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    say = Narrator()
    with _state_dir(args.state_dir) as state_dir:
        demo = Demo(state_dir, args.auth0_port, say)
        try:
            demo.start_everything()
            old = demo.apply_examples()
            demo.rotate(old)
            wanted: list[type[AnnounceStory | KeyPairStory]] = [
                *([AnnounceStory] if args.announce else []),
                *([KeyPairStory] if args.key_pair else []),
            ]
            for story in (kind(demo, NAMESPACE) for kind in wanted):
                try:
                    story.run()
                finally:
                    story.close()
            say.step("Done: rotated in Auth0, written to the Secret, rolled out")
            if args.keep:
                say.detail(f"export KUBECONFIG={demo.plane.kubeconfig}")
                say.detail(f'export PATH="{demo.plane.bin_dir}:$PATH"')
                say.detail(f"kubectl get a0cs -n {NAMESPACE}   # everything stays up until Ctrl-C")
                with contextlib.suppress(KeyboardInterrupt):
                    signal.pause()
            return 0
        except (DemoError, ControlPlaneError, httpx.HTTPError, subprocess.SubprocessError) as exc:
            print(f"\ndemo failed: {exc}", file=sys.stderr)
            for proc in demo.extra:
                print(f"--- {proc.name} log tail\n{log_tail(proc.log_path, 20)}", file=sys.stderr)
            return 1
        finally:
            say.step("Stopping everything the demo started")
            demo.stop()
            say.detail("operator, fake Auth0 tenant and control plane stopped")


if __name__ == "__main__":
    sys.exit(main())
