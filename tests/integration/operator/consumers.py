"""Consumers of a Deployment's pods, each holding the credentials of its pod's generation.

A pod first seen when the consumers start holds ``initial`` (what it started
with); a pod first seen later holds what the target Secret held then
(environment-variable semantics: read once, at start). Every 50 ms each
running pod authenticates with what it holds, by the consumer's rule
(``attempt``); every refusal is a failed authentication. This is what a
rotation must not break.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from kubernetes import client

from tests.integration.operator.harness import Kube

__all__ = ["PodConsumers", "Sighting"]

C = TypeVar("C")

REVISION = "auth0rotator.dev/secret-revision"


@dataclass
class Sighting:
    """When a pod was first and last seen running (clock time), and its secret revision."""

    first: float
    last: float
    revision: str
    initial: bool


class PodConsumers(Generic[C]):
    """One consumer per running pod of ``app=<name>``, from the pod's start to its end."""

    def __init__(
        self,
        api: client.ApiClient,
        kube: Kube,
        namespace: str,
        app: str,
        secret: str,
        *,
        initial: C,
        from_secret: Callable[[dict[str, str]], C],
        attempt: Callable[[C], str | None],
    ) -> None:
        """``attempt`` returns which credential worked (a label), or ``None`` if refused."""
        self.core = client.CoreV1Api(api)
        self.kube, self.namespace, self.app, self.secret = kube, namespace, app, secret
        self.initial, self.from_secret, self.attempt = initial, from_secret, attempt
        self.held: dict[str, C] = {}
        self.seen: dict[str, Sighting] = {}
        """Every pod that ran, by uid."""
        self.worked: dict[str, int] = {}
        """Successful authentications by the label ``attempt`` returned."""
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Adopt the running pods (with ``initial``) and start asking."""
        self._adopt(initial=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop asking."""
        self._stop.set()
        self._thread.join(10)

    def report(self) -> str:
        """What the consumers saw so far (for failure messages)."""
        alive, failed = self._thread.is_alive(), len(self.failures)
        return f"alive={alive} worked={self.worked} failures={failed} pods={len(self.held)}"

    def _pods(self) -> list[client.V1Pod]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"app={self.app}").items
        return [
            p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp
        ]

    def _adopt(self, *, initial: bool = False) -> list[client.V1Pod]:
        """Record the running pods (new ones take what they start with); return them."""
        now = time.time()
        pods = self._pods()
        for pod in pods:
            uid = str(pod.metadata.uid)
            if uid in self.seen:
                self.seen[uid].last = now
            else:
                revision = (pod.metadata.annotations or {}).get(REVISION, "")
                self.seen[uid] = Sighting(now, now, revision, initial)
            if uid not in self.held:
                data = {} if initial else self.kube.secret(self.namespace, self.secret) or {}
                self.held[uid] = self.initial if initial else self.from_secret(data)
        return pods

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for pod in self._adopt():
                worked = self.attempt(self.held[str(pod.metadata.uid)])
                if worked is None:
                    self.failures.append(str(pod.metadata.name))
                else:
                    self.worked[worked] = self.worked.get(worked, 0) + 1
