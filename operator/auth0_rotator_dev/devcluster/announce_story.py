"""``make demo DEMO_ARGS=--announce``: an announced client-secret rotation, narrated and timed.

After the first story, the demo sets ``announce: true`` on ``orders-api`` and
forces another rotation, following it every 50 ms: the journal's phases, the
Secret's keys (the next secret beside the current one), when Auth0 changes,
and two consumers of the Deployment's pods holding the credentials of their
pod's generation — one applying the fallback rule (``client_secret``, then
``next_client_secret``), one without it. It prints their failed token
requests and the time from the annotation to Auth0's change and to the close.
Values are shown as fingerprints only.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

from auth0_rotator_dev.devcluster.narration import DemoError, fingerprint
from auth0_rotator_dev.devcluster.story import Story

if TYPE_CHECKING:
    from auth0_rotator_dev.devcluster.demo import Demo

__all__ = ["AnnounceStory"]

NAME, CLIENT_ID, SECRET, APP = "orders-api", "orders-api-client", "orders-api-auth0", "orders-api"


class AnnounceStory(Story):
    """The ``announce`` part of the demo, on the demo's running pieces."""

    resource = NAME

    def __init__(self, demo: Demo, namespace: str) -> None:
        """Nothing held yet."""
        super().__init__(demo, namespace)
        # Pod uid -> (client_secret, next_client_secret) it started with.
        self.held: dict[str, tuple[str, str | None]] = {}

    def _data(self) -> dict[str, str]:
        raw = self.core.read_namespaced_secret(SECRET, self.namespace).data or {}
        return {k: base64.b64decode(v).decode() for k, v in raw.items()}

    def _accepted(self, secret: str | None) -> bool:
        http = self.demo.http
        assert http is not None  # noqa: S101 - set in start_everything
        if not secret:
            return False
        answer = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": secret,
                "audience": f"https://127.0.0.1:{self.demo.port}/api/v2/",
            },
        )
        return answer.status_code in (200, 403)  # 403: authenticated, no API grant

    def _pods(self) -> list[str]:
        listed: dict[str, Any] = self.api.sanitize_for_serialization(
            self.core.list_namespaced_pod(
                self.namespace, label_selector=f"app.kubernetes.io/name={APP}"
            )
        )
        return [
            str(p["metadata"]["uid"])
            for p in listed.get("items") or []
            if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        ]

    def run(self) -> None:
        """Turn announce on, force a rotation, follow it."""
        self.say.step("Announced rotation: the next secret reaches the pods before Auth0 changes")
        self.demo.kubectl(
            "patch", "-n", self.namespace, "a0cs", NAME, "--type=merge",
            "-p", '{"spec": {"announce": true}}', show=True,
        )  # fmt: skip
        data = self._data()
        for uid in self._pods():
            self.held[uid] = (data["client_secret"], data.get("next_client_secret"))
        request = str(int(time.time() * 1000))
        started = time.time()
        self.demo.kubectl(
            "annotate", "-n", self.namespace, "a0cs", NAME,
            f"auth0rotator.dev/rotate={request}", "--overwrite", show=True,
        )  # fmt: skip
        keys, failed = "", {"fallback": 0, "plain": 0}
        asked = 0
        deadline = time.monotonic() + 120
        follower = self._follow()
        try:
            while time.monotonic() < deadline:
                status, phases = self._status_and_phases(follower)
                for phase in phases:
                    self.say.detail(f"journal phase {phase} persisted")
                journal = status.get("rotation") or {}
                data = self._data()
                shown = ", ".join(
                    f"{k} {fingerprint(v)}" for k, v in sorted(data.items()) if "secret" in k
                )
                if shown != keys:
                    keys = shown
                    self.say.detail(f"Secret {SECRET}: {shown}")
                for uid in self._pods():
                    current, upcoming = self.held.setdefault(
                        uid, (data["client_secret"], data.get("next_client_secret"))
                    )
                    asked += 1
                    if not self._accepted(current):
                        failed["plain"] += 1
                        failed["fallback"] += not self._accepted(upcoming)
                if status.get("lastRotateRequest") == request and not journal:
                    break
                time.sleep(0.05)
            else:
                raise DemoError("the announced rotation did not finish within 120s")
        finally:
            follower.close()
        self._summarise(started, asked, failed)

    def _summarise(self, started: float, asked: int, failed: dict[str, int]) -> None:
        closed = time.time()
        http = self.demo.http
        assert http is not None  # noqa: S101 - set in start_everything
        changed = [
            c["time"]
            for c in http.get("/_fake/calls").json()
            if c["endpoint"] == "patch-client" and c["time"] >= started
        ]
        if not changed:
            raise DemoError("Auth0 was not changed")
        ready = next(c for c in self._status().get("conditions") or [] if c["type"] == "Ready")
        self.say.detail(f"Ready={ready['status']} {ready['reason']}: {ready['message']}")
        self.say.detail(
            f"{asked} token requests by the pods' consumers: {failed['fallback']} refused with "
            f"the fallback rule, {failed['plain']} refused without it"
        )
        self.say.detail(
            f"Auth0 changed {changed[0] - started:.1f}s after the annotation (after the "
            f"announcement's rollout); closed after {closed - started:.1f}s (second rollout "
            "started)"
        )
