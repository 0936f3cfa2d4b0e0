"""``make demo DEMO_ARGS=--key-pair``: a zero-downtime ``KeyPair`` rotation, narrated and timed.

After the client-secret story, the demo applies ``examples/keypair.yaml``
(strategy ``KeyPair`` for ``payments-api``), lets creation register a first
key, then forces a rotation and follows it: every journal phase (from a watch),
and every 50 ms the keys Auth0 has enabled (two during the rollout), what ``/oauth/token``
answers a consumer holding the old key and one holding the new key, the
Deployment rolling, and the old key's deletion. It prints two timings: from
the annotation to the old key's deletion, and from the rollout's end (as seen
here) to ``RolloutComplete``. Keys are shown as fingerprints only.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from kubernetes import client

from auth0_rotator.keypairs import ASSERTION_TYPE, sign_assertion
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator_dev.devcluster.narration import DemoError, fingerprint, wait_until
from auth0_rotator_dev.devcluster.story import Story

__all__ = ["KeyPairStory"]

NAME, CLIENT_ID, SECRET = "payments-api", "payments-api-client", "payments-api-auth0"


class KeyPairStory(Story):
    """The ``KeyPair`` part of the demo, on the demo's running pieces."""

    resource = NAME

    # -- reads -----------------------------------------------------------------------

    def _private_key(self) -> SecretValue | None:
        try:
            data = self.core.read_namespaced_secret(SECRET, self.namespace).data or {}
        except client.ApiException:
            return None
        raw = data.get("private_key")
        return SecretValue(base64.b64decode(raw).decode()) if raw else None

    def _enabled(self) -> list[str]:
        http = self.demo.http
        assert http is not None  # noqa: S101 - set in start_everything
        found: list[str] = http.get(f"/_fake/clients/{CLIENT_ID}").json()["enabled_credentials"]
        return found or []

    def _settled(self, revision: str) -> bool:
        deployment: dict[str, Any] = self.api.sanitize_for_serialization(
            self.apps.read_namespaced_deployment(NAME, self.namespace)
        )
        spec, st = deployment["spec"], deployment.get("status") or {}
        annotations = (spec["template"].get("metadata") or {}).get("annotations") or {}
        want = spec.get("replicas", 1)
        return bool(
            annotations.get("auth0rotator.dev/secret-revision") == revision
            and st.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
            and st.get("updatedReplicas") == want
            and st.get("availableReplicas") == want
            and st.get("replicas") == want
        )

    def _token(self, key: SecretValue) -> str:
        http = self.demo.http
        assert http is not None  # noqa: S101 - set in start_everything
        domain = f"127.0.0.1:{self.demo.port}"
        assertion = sign_assertion(key, algorithm="RS256", client_id=CLIENT_ID, domain=domain)
        answer = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion.reveal(),
                "audience": f"https://{domain}/api/v2/",
            },
        )
        if answer.status_code in (200, 403):
            return f"accepted (HTTP {answer.status_code})"
        return f"refused (HTTP {answer.status_code}, {answer.json().get('error')})"

    # -- the story -------------------------------------------------------------------

    def run(self) -> None:
        """Create, then force and follow one KeyPair rotation."""
        self.say.step("Zero-downtime rotation: examples/keypair.yaml (strategy KeyPair)")
        example = str(self.demo._example("keypair.yaml"))
        self.demo.kubectl("apply", "-n", self.namespace, "-f", example, show=True)

        def created() -> dict[str, Any] | None:
            status = self._status()
            return status if status.get("credential") and not status.get("rotation") else None

        status = wait_until(created, 90, "the first key of payments-api")
        first = self._private_key()
        if first is None:
            raise DemoError(f"Secret {SECRET} holds no private key")
        self.say.detail(
            f"creation registered a first key (nothing to fetch: a private key never leaves "
            f"its Secret): credential {status['credential']['id']} enabled, Secret {SECRET} "
            f"holds its private key ({fingerprint(first.reveal())})"
        )
        wait_until(lambda: self._settled(str(status["secretRevision"])), 120, "payments-api")
        self.say.detail(f"Deployment {NAME}: 2 pods run with that key")
        self._rotate(first)

    def _rotate(self, old: SecretValue) -> None:
        self.say.step("Forcing a KeyPair rotation; following it every 50 ms")
        request = str(int(time.time() * 1000))
        started = time.time()
        self.demo.kubectl(
            "annotate",
            "-n",
            self.namespace,
            "a0cs",
            NAME,
            f"auth0rotator.dev/rotate={request}",
            "--overwrite",
            show=True,
        )
        phase, enabled, settled_at, complete_at = "", [self._enabled()], 0.0, 0.0
        refused_old = asked_old = 0
        deadline = time.monotonic() + 120
        follower = self._follow()
        try:
            while time.monotonic() < deadline:
                # Auth0 first, the status second: a phase persisted before Auth0 changed is
                # then printed before that change (phases come from a watch, every one).
                now_enabled = self._enabled()
                status, phases = self._status_and_phases(follower)
                for phase in phases:
                    self.say.detail(f"journal phase {phase} persisted")
                journal = status.get("rotation") or {}
                phase = journal.get("phase", "")
                if now_enabled != enabled[-1]:
                    enabled.append(now_enabled)
                    self.say.detail(f"Auth0: {len(now_enabled)} key(s) enabled: {now_enabled}")
                    new = self._private_key()
                    if len(now_enabled) == 2 and new is not None:
                        self.say.detail(f"old key: {self._token(old)}; new key: {self._token(new)}")
                revision = str(status.get("restartRevision") or "")
                if not settled_at and phase == "RollingOut" and self._settled(revision):
                    settled_at = time.monotonic()
                rollout: dict[str, Any] = next(
                    (c for c in status.get("conditions") or [] if c["type"] == "RolloutComplete"),
                    {},
                )
                if settled_at and not complete_at and rollout.get("status") == "True":
                    complete_at = time.monotonic()
                if not settled_at:
                    # A consumer whose pod still runs the old key keeps asking.
                    asked_old += 1
                    refused_old += self._token(old).startswith("refused")
                if status.get("lastRotateRequest") == request and not journal:
                    break
                time.sleep(0.05)
            else:
                raise DemoError("the KeyPair rotation did not finish within 120s")
        finally:
            follower.close()
        self._summarise(old, started, settled_at, complete_at, (asked_old, refused_old))

    def _summarise(
        self,
        old: SecretValue,
        started: float,
        settled_at: float,
        complete_at: float,
        old_asks: tuple[int, int],
    ) -> None:
        http = self.demo.http
        assert http is not None  # noqa: S101 - set in start_everything
        deleted = [
            c["time"]
            for c in http.get("/_fake/calls").json()
            if c["endpoint"] == "delete-credential" and c["time"] >= started
        ]
        if not deleted:
            raise DemoError("the old key was not deleted")
        new = self._private_key()
        if new is None:
            raise DemoError(f"Secret {SECRET} holds no private key")
        status = self._status()
        self.say.detail(
            f"Secret {SECRET} changed: {fingerprint(old.reveal())} -> "
            f"{fingerprint(new.reveal())}; Auth0 keeps {self._enabled()}"
        )
        self.say.detail(f"new key: {self._token(new)}; old key: {self._token(old)}")
        asked, refused = old_asks
        self.say.detail(
            f"a consumer on the old key until the rollout ended: {asked} token requests, "
            f"{refused} refused"
        )
        ready = next(c for c in status.get("conditions") or [] if c["type"] == "Ready")
        self.say.detail(f"Ready={ready['status']} {ready['reason']}: {ready['message']}")
        self.say.detail(
            f"old key deleted {deleted[-1] - started:.1f}s after the annotation "
            "(register, enable both, verify, write, restart, roll out, retire)"
        )
        if settled_at and complete_at:
            lag = complete_at - settled_at
            when = f"{lag:.2f}s after" if lag >= 0.05 else "within the same 50 ms poll as"
            self.say.detail(
                f"RolloutComplete {when} the Deployment finished rolling (the operator follows "
                "the Deployment's watch events, it does not poll)"
            )
