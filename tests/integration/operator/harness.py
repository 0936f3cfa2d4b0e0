"""Helpers for operator tests: the fake tenant's control API, tenants, polling."""

from __future__ import annotations

import functools
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import httpx
from kubernetes import client, watch

from auth0_rotator.keypairs import ASSERTION_TYPE, public_key_pem, sign_assertion
from auth0_rotator.rotation.crash import CRASH_ENV
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator_dev.devcluster import ControlPlane

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
FAKE_PORT = 18443
DOMAIN = f"127.0.0.1:{FAKE_PORT}"
AUDIENCE = f"https://{DOMAIN}/api/v2/"
M2M_ID = "rotator-m2m"
M2M_SECRET = "example-management-secret-for-the-local-fake-tenant-only"
FULL_SCOPES = ["read:client_keys", "update:client_keys"]
GROUP, VERSION = "auth0rotator.dev", "v1alpha1"
CREDENTIALS_LABELS = {"auth0rotator.dev/credentials": "true"}
"""The opt-in a Secret needs before a tenant may use it as management credentials."""
ALLOW_LOCAL_FAKES = ("--allowed-domain", "127.0.0.1:*")
"""The operator sends credentials to Auth0's domains only; tests allow their local fakes."""


class FakeTenant:
    """The fake tenant process and its control API."""

    def __init__(self, url: str, ca_file: Path) -> None:
        self.url = url
        self.ca_file = ca_file
        self.http = httpx.Client(
            base_url=url, verify=ssl.create_default_context(cafile=str(ca_file)), timeout=10
        )

    def create_client(self, client_id: str, scopes: list[str] | None = None, **extra: Any) -> str:
        """Create a client; ``scopes`` become a Management API grant. Return its secret."""
        body: dict[str, Any] = {"client_id": client_id, **extra}
        if scopes is not None:
            body["grants"] = {AUDIENCE: scopes}
        resp = self.http.post("/_fake/clients", json=body)
        resp.raise_for_status()
        secret: str = resp.json()["client_secret"]
        return secret

    def create_jwt_client(
        self, *keys: SecretValue, scopes: list[str] | None = None
    ) -> tuple[str, list[dict[str, Any]]]:
        """A new client on Private Key JWT with ``keys`` enabled (and an API grant).

        Returns its id and its credentials as the fake shows them.
        """
        client_id = f"jwt-{uuid.uuid4().hex[:10]}"
        public = [{"pem": public_key_pem(k), "name": f"by hand {n}"} for n, k in enumerate(keys)]
        self.create_client(client_id, scopes or [], public_keys=public)
        credentials: list[dict[str, Any]] = self.client(client_id)["credentials"]
        return client_id, credentials

    def token_status(self, client_id: str, key: SecretValue, algorithm: str = "RS256") -> int:
        """What ``/oauth/token`` answers a consumer authenticating with ``key``."""
        assertion = sign_assertion(key, algorithm=algorithm, client_id=client_id, domain=DOMAIN)
        resp = self.http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion.reveal(),
                "audience": AUDIENCE,
            },
        )
        return resp.status_code

    def secret_status(self, client_id: str, secret: str) -> int:
        """What ``/oauth/token`` answers a consumer authenticating with a client secret."""
        resp = self.http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
                "audience": AUDIENCE,
            },
        )
        return resp.status_code

    def client(self, client_id: str) -> dict[str, Any]:
        """The fake's view of a client: current secret and change count."""
        data: dict[str, Any] = self.http.get(f"/_fake/clients/{client_id}").json()
        return data

    def calls(self, target: str | None = None) -> list[dict[str, Any]]:
        """Call log, optionally only calls whose path names ``target``."""
        log: list[dict[str, Any]] = self.http.get("/_fake/calls").json()
        return [c for c in log if target is None or f"/{target}" in c["path"]]

    def issued_secrets(self) -> list[str]:
        """Every client secret the fake ever issued or accepted."""
        values: list[str] = self.http.get("/_fake/issued-secrets").json()
        return values

    def create_action(self, action_id: str, secrets: dict[str, str]) -> None:
        """Create an Action with ``secrets`` (name -> value)."""
        resp = self.http.post("/_fake/actions", json={"id": action_id, "secrets": secrets})
        resp.raise_for_status()

    def action(self, action_id: str) -> dict[str, Any]:
        """The fake's view of an Action: secret values and deployed versions."""
        data: dict[str, Any] = self.http.get(f"/_fake/actions/{action_id}").json()
        return data

    def rules_configs(self) -> dict[str, str]:
        """Every rules config value."""
        data: dict[str, str] = self.http.get("/_fake/rules-configs").json()
        return data

    def fault(self, **fault: Any) -> None:
        """Inject a fault (see POST /_fake/faults)."""
        self.http.post("/_fake/faults", json=fault).raise_for_status()

    def clear_faults(self) -> None:
        """Remove every fault."""
        self.http.delete("/_fake/faults").raise_for_status()


def make_tenant(
    api: client.ApiClient,
    namespace: str,
    name: str,
    client_id: str,
    client_secret: str,
    domain: str = DOMAIN,
) -> None:
    """Create a credentials Secret and an Auth0Tenant pointing at the fake (or ``domain``)."""
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=f"{name}-credentials", labels=CREDENTIALS_LABELS),
            string_data={"client_id": client_id, "client_secret": client_secret},
        ),
    )
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "auth0rotator.dev",
        "v1alpha1",
        namespace,
        "auth0tenants",
        {
            "apiVersion": "auth0rotator.dev/v1alpha1",
            "kind": "Auth0Tenant",
            "metadata": {"name": name},
            "spec": {
                "domain": domain,
                "credentials": {"secretRef": {"name": f"{name}-credentials"}},
                "rateLimit": {"requestsPerSecond": 50, "burst": 50},
            },
        },
    )


def make_deployment(api: client.ApiClient, namespace: str, name: str, replicas: int = 1) -> None:
    """A Deployment (labelled ``app: <name>``) whose pods kwok runs."""
    labels = {"app": name}
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
                },
            },
        },
    )


def wait_for(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    """Poll ``check`` until truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def dump(obj: Any) -> str:
    """Short JSON for assertion messages."""
    return json.dumps(obj, default=str)[:2000]


def a0cs_body(name: str, client_id: str, **spec: Any) -> dict[str, Any]:
    """An Auth0ClientSecret manifest."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Auth0ClientSecret",
        "metadata": {"name": name},
        "spec": {"clientId": client_id, **spec},
    }


class Kube:
    """Reads and writes of the resources the tests look at."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def create(self, namespace: str, body: dict[str, Any]) -> None:
        """Create an Auth0ClientSecret."""
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "auth0clientsecrets", body
        )

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        """An Auth0ClientSecret."""
        obj = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "auth0clientsecrets", name
        )
        return cast(dict[str, Any], obj)

    def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch an Auth0ClientSecret."""
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "auth0clientsecrets", name, patch
        )

    def annotate_rotate(self, namespace: str, name: str, value: str) -> None:
        """Force a rotation the kubectl way."""
        self.patch(
            namespace, name, {"metadata": {"annotations": {"auth0rotator.dev/rotate": value}}}
        )

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """Decoded data of a Secret, or None."""
        import base64

        try:
            s = self.core.read_namespaced_secret(name, namespace)
        except client.exceptions.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}

    def condition(self, namespace: str, name: str, ctype: str = "Ready") -> dict[str, Any]:
        """A condition of an Auth0ClientSecret ({} if absent)."""
        status = self.get(namespace, name).get("status") or {}
        for c in status.get("conditions") or []:
            if c["type"] == ctype:
                return dict(c)
        return {}

    def wait_ready(
        self, namespace: str, name: str, reason: str | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        """Wait for Ready=True (with ``reason``) and no rotation in progress; return status."""

        def done() -> dict[str, Any] | None:
            status = self.get(namespace, name).get("status") or {}
            conditions = status.get("conditions") or []
            ready: dict[str, Any] = next((c for c in conditions if c["type"] == "Ready"), {})
            ok = ready.get("status") == "True" and not status.get("rotation")
            if reason is not None:
                ok = ok and ready.get("reason") == reason
            return status if ok else None

        result: dict[str, Any] = wait_for(done, timeout, f"{namespace}/{name} Ready ({reason})")
        return result

    def wait_reason(
        self, namespace: str, name: str, reason: str, timeout: float = 60
    ) -> dict[str, Any]:
        """Wait for the Ready condition to carry ``reason``; return the condition."""
        result: dict[str, Any] = wait_for(
            lambda: (c := self.condition(namespace, name)) and c.get("reason") == reason and c,
            timeout,
            f"{namespace}/{name} reason {reason}",
        )
        return result


OPERATOR_LOG_DIRS: list[Path] = []
"""Where operator subprocesses wrote their logs during this session (leak scan)."""


def fetched_apps(
    kube: Kube, fake: FakeTenant, namespace: str, prefix: str, count: int
) -> list[str]:
    """``count`` new Auth0 applications, each with an Auth0ClientSecret ``app-<n>``, all Fetched."""
    clients = [f"{prefix}-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for n, client_id in enumerate(clients):
        fake.create_client(client_id)
        kube.create(namespace, a0cs_body(f"app-{n}", client_id))
    for n in range(count):
        kube.wait_ready(namespace, f"app-{n}", reason="Fetched")
    return clients


class OperatorProcess:
    """One ``auth0-rotator run`` process watching ``c-*`` namespaces.

    Later ``args`` override the defaults above them (argparse keeps the last);
    ``code`` runs the package found in that folder instead of this checkout's.
    """

    def __init__(
        self,
        plane: ControlPlane,
        fake: FakeTenant,
        log_dir: Path,
        identity: str,
        crash_at: str = "",
        args: Sequence[str] = (),
        code: Path | None = None,
    ) -> None:
        env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
        if code is not None:
            # Another release's package (its operator/ folder) comes before this checkout's.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
        env.pop(CRASH_ENV, None)
        if crash_at:
            env[CRASH_ENV] = crash_at
        self.log = log_dir / f"operator-{identity}-{crash_at or 'normal'}-{time.monotonic_ns()}.log"
        OPERATOR_LOG_DIRS.append(log_dir)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "auth0_rotator.cli",
                    "run",
                    "-n",
                    "c-*",
                    "--identity",
                    identity,
                    "--verify-timeout",
                    "10",
                    "--extra-ca-file",
                    str(fake.ca_file),
                    "--metrics",
                    "",
                    "--liveness",
                    "",
                    *ALLOW_LOCAL_FAKES,
                    *args,
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_killed(self, timeout: float = 60) -> int:
        """Wait for the process to die by itself; return its exit code."""
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Stop it for good."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


class SuiteRecorder:
    """Everything the suite's operators publish, kept for the leak scan at the end.

    Watches Events (all namespaces) and Auth0ClientSecrets in background threads
    from the moment the operator fixture starts, so what was deleted with a test's
    namespace is still scanned.
    """

    def __init__(self, api: client.ApiClient) -> None:
        self.texts: list[str] = []
        self._stop = threading.Event()
        self._api = api
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        self._threads = [
            threading.Thread(
                target=self._follow, args=(core.list_event_for_all_namespaces,), daemon=True
            ),
            threading.Thread(
                target=self._follow,
                args=(
                    functools.partial(
                        custom.list_cluster_custom_object,
                        "auth0rotator.dev",
                        "v1alpha1",
                        "auth0clientsecrets",
                    ),
                ),
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()

    def _follow(self, list_fn: Callable[..., Any]) -> None:
        version = None
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(
                    list_fn, resource_version=version, timeout_seconds=2
                ):
                    obj = event["object"]
                    # The fixture's client: a new one per event would read the
                    # environment from this thread while pytest changes it.
                    data = (
                        obj if isinstance(obj, dict) else self._api.sanitize_for_serialization(obj)
                    )
                    version = (data.get("metadata") or {}).get("resourceVersion") or version
                    self.texts.append(json.dumps(data, default=str))
            except (client.exceptions.ApiException, OSError, ValueError):
                version = None  # expired or cut: list again
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
