"""The soak's world: control plane, fake tenant, two operator replicas, 40 resources.

Four namespaces, ten resources each: strategies ``Generate``, ``Rotate``,
``Generate`` + ``announce`` and ``KeyPair`` in turn; triggers by schedule
(every minute), by spec change or by annotation only in turn; restart targets
a Deployment, a StatefulSet or a DaemonSet in turn. Namespaces ``soak-0`` and
``soak-1`` use a tenant whose management client authenticates with a client
secret, ``soak-2`` and ``soak-3`` one that signs Private Key JWT assertions.
"""

from __future__ import annotations

import base64
import json
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config

from auth0_rotator.keypairs import (
    ASSERTION_TYPE,
    generate_private_key,
    public_key_pem,
    sign_assertion,
)
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator_dev.devcluster import ControlPlane
from auth0_rotator_dev.devcluster.cluster import free_port
from processes import Processes

__all__ = ["GROUP", "LEASE_NS", "NAMESPACES", "Resource", "World"]

GROUP = ("auth0rotator.dev", "v1alpha1")
NAMESPACES = [f"soak-{n}" for n in range(4)]
LEASE_NS = "soak-system"
PER_NAMESPACE = 10
STRATEGIES = ("Generate", "Rotate", "Announce", "KeyPair")
TRIGGERS = ("schedule", "spec", "annotation")
WORKLOADS = (("Deployment", "web"), ("StatefulSet", "db"), ("DaemonSet", "agent"))
M2M_SECRET = "s" * 48
SCOPES = ["read:client_keys", "update:client_keys"] + [
    f"{verb}:client_credentials" for verb in ("read", "create", "update", "delete")
]


@dataclass
class Resource:
    """One ``Auth0ClientSecret`` of the soak and how it is driven."""

    namespace: str
    name: str
    client_id: str
    strategy: str
    trigger: str
    target: tuple[str, str]

    def spec(self, client_id_key: str = "client_id") -> dict[str, Any]:
        """Its spec (``client_id_key`` is what spec changes toggle)."""
        spec: dict[str, Any] = {
            "clientId": self.client_id,
            "secretName": self.name,
            "restartTargets": [{"kind": self.target[0], "name": self.target[1]}],
            "keys": {"clientId": client_id_key},
        }
        if self.strategy == "Announce":
            spec |= {"strategy": "Generate", "announce": True}
        elif self.strategy == "KeyPair":
            spec |= {"strategy": "KeyPair", "keyPair": {"size": 2048}}
        else:
            spec["strategy"] = self.strategy
        if self.trigger == "schedule":
            spec |= {"schedule": "* * * * *", "minInterval": "1m"}
        return spec


class World:
    """Everything the soak starts, and the reads its checks need."""

    def __init__(self, plane: ControlPlane, tmp: Path) -> None:
        self.plane, self.tmp = plane, tmp
        self.processes = Processes(tmp)
        self.domain = f"127.0.0.1:{free_port()}"
        self.audience = f"https://{self.domain}/api/v2/"
        new_client: Any = config.new_client_from_config
        self.api = new_client(config_file=str(plane.kubeconfig))
        self.core: Any = client.CoreV1Api(self.api)
        self.apps: Any = client.AppsV1Api(self.api)
        self.custom: Any = client.CustomObjectsApi(self.api)
        self.coordination: Any = client.CoordinationV1Api(self.api)
        self.resources = [
            Resource(
                namespace=ns,
                name=f"app-{j}",
                client_id=f"{ns}-app-{j}",
                strategy=STRATEGIES[j % len(STRATEGIES)],
                trigger=TRIGGERS[j % len(TRIGGERS)],
                target=WORKLOADS[j % len(WORKLOADS)],
            )
            for ns in NAMESPACES
            for j in range(PER_NAMESPACE)
        ]
        self.m2m_key = generate_private_key(2048)
        self.metrics_ports: dict[str, int] = {}

    # -- start -------------------------------------------------------------------------

    def start_fake(self) -> None:
        """The fake tenant: two management clients and one application per resource."""
        clients: list[dict[str, Any]] = [
            {"client_id": "m2m-a", "client_secret": M2M_SECRET,
             "grants": {self.audience: SCOPES}},
            {"client_id": "m2m-b", "grants": {self.audience: SCOPES},
             "public_keys": [{"pem": public_key_pem(self.m2m_key), "name": "by hand"}]},
        ]  # fmt: skip
        for r in self.resources:
            clients.append(
                {"client_id": r.client_id, "private_key_jwt": True}
                if r.strategy == "KeyPair"
                else {"client_id": r.client_id}
            )
        seed = self.tmp / "seed.json"
        seed.write_text(json.dumps({"clients": clients}))
        self.processes.spawn(
            [sys.executable, "-m", "auth0_rotator.cli", "fake-auth0", "--listen", self.domain,
             "--tls-dir", str(self.tmp / "tls"), "--seed", str(seed),
             "--rate-limit", "200", "--burst", "200"]
        )  # fmt: skip
        self.ca = self.tmp / "tls" / "ca.crt"
        deadline = time.monotonic() + 30
        while not self.ca.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        tls = ssl.create_default_context(cafile=str(self.ca))
        self.http = httpx.Client(base_url=f"https://{self.domain}", verify=tls, timeout=10)
        for _ in range(100):
            try:
                self.http.get("/_fake/settings").raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        self.settings(propagation_delay=1.0)

    def settings(self, **changes: Any) -> None:
        """Change the fake tenant's settings."""
        self.http.put("/_fake/settings", json=changes).raise_for_status()

    def setup_cluster(self) -> None:
        """CRDs, namespaces, tenants, workloads and resources."""
        self.plane.kubectl_run("apply", "-f", str(Path(__file__).resolve().parents[1] / "crds"))
        self.plane.kubectl_run(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"
        )
        for ns in [LEASE_NS, *NAMESPACES]:
            self.core.create_namespace({"metadata": {"name": ns}})
        for n, ns in enumerate(NAMESPACES):
            self.core.create_namespaced_secret(ns, self.credentials_secret(n < 2))
            self.create(ns, "auth0tenants", "Auth0Tenant", "default", {
                "domain": self.domain,
                "credentials": {"secretRef": {"name": "credentials"}},
                "rateLimit": {"requestsPerSecond": 50, "burst": 50},
            })  # fmt: skip
            self._workloads(ns)
        for r in self.resources:
            self.create(r.namespace, "auth0clientsecrets", "Auth0ClientSecret", r.name, r.spec())

    def credentials_secret(self, with_secret: bool, broken: bool = False) -> dict[str, Any]:
        """The management credentials of a namespace's tenant (``broken``: a wrong value)."""
        if with_secret:
            data = {"client_id": "m2m-a", "client_secret": "wrong" if broken else M2M_SECRET}
        else:
            key = generate_private_key(2048).reveal() if broken else self.m2m_key.reveal()
            data = {"client_id": "m2m-b", "private_key": key, "algorithm": "RS256"}
        return {
            "metadata": {"name": "credentials",
                         "labels": {"auth0rotator.dev/credentials": "true"}},
            "stringData": data,
        }  # fmt: skip

    def create(self, ns: str, plural: str, kind: str, name: str, spec: dict[str, Any]) -> None:
        """Create one of the operator's resources."""
        body = {"apiVersion": "/".join(GROUP), "kind": kind, "metadata": {"name": name},
                "spec": spec}  # fmt: skip
        self.custom.create_namespaced_custom_object(*GROUP, ns, plural, body)

    def _workloads(self, ns: str) -> None:
        for kind, name in WORKLOADS:
            labels = {"app": name}
            template = {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "a", "image": "registry.invalid/a"}]},
            }
            spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": template}
            body = {"metadata": {"name": name}, "spec": spec}
            if kind == "Deployment":
                self.apps.create_namespaced_deployment(ns, body | {"spec": spec | {"replicas": 2}})
            elif kind == "StatefulSet":
                spec |= {"replicas": 1, "serviceName": name}
                self.apps.create_namespaced_stateful_set(ns, body)
            else:
                self.apps.create_namespaced_daemon_set(ns, body)

    def start_operator(self, identity: str) -> None:
        """One replica (leader election on, as the chart runs it)."""
        port = self.metrics_ports.setdefault(identity, free_port())
        self.processes.spawn(
            [sys.executable, "-m", "auth0_rotator.cli", "run", "-n", "soak-*",
             "--identity", identity, "--leader-elect", "--lease-namespace", LEASE_NS,
             "--extra-ca-file", str(self.ca), "--allowed-domain", self.domain,
             "--metrics", f"127.0.0.1:{port}", "--liveness", "",
             "--auth0-deadline", "5", "--verify-timeout", "60", "--restart-window", "2",
             "--rollout-deadline", "120"],
            env={"KUBECONFIG": str(self.plane.kubeconfig)},
            name=identity,
        )  # fmt: skip

    # -- reads -------------------------------------------------------------------------

    def leader(self) -> str | None:
        """The identity holding the Lease."""
        try:
            lease = self.coordination.read_namespaced_lease("auth0-rotator", LEASE_NS)
        except client.ApiException:
            return None
        holder: str | None = lease.spec.holder_identity
        return holder

    def get(self, r: Resource) -> dict[str, Any] | None:
        """The resource, or ``None`` while it does not exist."""
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                *GROUP, r.namespace, "auth0clientsecrets", r.name
            )
        except client.ApiException:
            return None
        return found

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data, decoded."""
        try:
            raw = self.core.read_namespaced_secret(name, namespace).data or {}
        except client.ApiException:
            return None
        return {k: base64.b64decode(v).decode() for k, v in raw.items()}

    def fake_client(self, client_id: str) -> dict[str, Any]:
        """The fake tenant's view of an application (credentials included)."""
        found: dict[str, Any] = self.http.get(f"/_fake/clients/{client_id}").json()
        return found

    def authenticates(self, r: Resource, data: dict[str, str]) -> bool | None:
        """Whether the Secret's credentials authenticate ``r``'s application now.

        ``None`` when the token endpoint neither authenticated nor refused (a fault).
        """
        form = {"grant_type": "client_credentials", "client_id": r.client_id,
                "audience": self.audience}  # fmt: skip
        if r.strategy == "KeyPair":
            if "private_key" not in data:
                return False
            assertion = sign_assertion(
                SecretValue(data["private_key"]), algorithm=data.get("algorithm", "RS256"),
                client_id=r.client_id, domain=self.domain,
            )  # fmt: skip
            form |= {"client_assertion_type": ASSERTION_TYPE,
                     "client_assertion": assertion.reveal()}  # fmt: skip
        elif "client_secret" in data:
            form["client_secret"] = data["client_secret"]
        else:
            return False
        code = self.http.post("/oauth/token", data=form).status_code
        return code in (200, 403) if code in (200, 401, 403) else None
