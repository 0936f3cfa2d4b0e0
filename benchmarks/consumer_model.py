"""The consumer model of ``consumer_impact.py``: what a rotation does to the pods' token requests.

One consumer per pod, from the pod's creation until its deletion starts. It
holds the credentials the target Secret had when its pod was created
(environment variables are resolved when a container starts, and a pod's
containers start within moments of its creation) and asks ``/oauth/token``
every :data:`TICK` seconds with them, by the mode's rule:

- a client secret: ``client_secret``;
- ``announce``: ``client_secret``, and when it is refused ``next_client_secret``
  (the README's fallback rule);
- ``KeyPair``: a ``client_assertion`` signed with its ``private_key``.

A refusal (HTTP 401) is a failed authentication; 403 (authenticated, but no
grant for the audience) is a success; anything else is counted apart, as
neither. A second column applies mounted-file semantics: the pod sees the
Secret as it was :data:`FILE_LAG` seconds earlier (kubelet's sync period and
cache), or as at its creation if that is later; such a consumer re-reads its
files on every request. Consumers asking with the same credentials in the same
tick share one real token request: Auth0's answer depends only on the
credentials and the moment, and this keeps the load on a 2-core machine
independent of the number of pods.

Why it is a fair model: it is what an application that fetches a token per
request (or per short-lived cache) sees, which is the common pattern for
machine-to-machine clients; a consumer caching tokens for their full lifetime
would see fewer failures, but later and for longer.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from kubernetes import client

__all__ = ["FILE_LAG", "TICK", "Consumers", "Credential", "Unanswered", "figures", "pct"]

TICK = 0.2
"""Seconds between two token requests of one consumer (5 per second)."""
FILE_LAG = 60.0
"""Seconds a mounted Secret file lags the Secret (kubelet's sync period and cache)."""

Credential = tuple[str, ...]
"""("secret", value) or ("key", pem, kid, alg); a consumer's credentials are a tuple of them."""


class Probe(Protocol):
    """What the consumers read and ask (the benchmark's environment)."""

    def secret_data(self, mode: str) -> dict[str, str]:
        """The mode's target Secret, decoded."""

    def pods(self, mode: str) -> list[str]:
        """Uids of the mode's pods that exist and are not being deleted."""

    def authenticates(self, mode: str, credential: Credential) -> bool:
        """Whether Auth0 authenticates the mode's application with ``credential`` now."""


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank), rounded; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


class Unanswered(Exception):
    """The token endpoint neither authenticated nor refused (not counted either way)."""


@dataclass
class Tick:
    """One round of requests: when, how many consumers asked, how many were refused."""

    at: float
    asked: int
    failed_env: int
    failed_file: int


@dataclass
class Consumers:
    """The consumers of one mode's Deployment, asking every :data:`TICK` seconds."""

    bench: Probe
    mode: str
    history: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    born: dict[str, float] = field(default_factory=dict)
    ticks: list[Tick] = field(default_factory=list)
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def credentials(self, data: dict[str, str]) -> tuple[Credential, ...]:
        """What a consumer holding ``data`` tries, in order."""
        if self.mode == "KeyPair":
            if not data.get("private_key"):
                return ()
            return (("key", data["private_key"], data.get("key_id", ""), data["algorithm"]),)
        secrets = [data.get("client_secret")]
        if self.mode == "Announce":
            secrets.append(data.get("next_client_secret"))
        return tuple(("secret", s) for s in secrets if s)

    def _as_of(self, moment: float) -> dict[str, str]:
        """The Secret as it was at ``moment`` (the oldest known if earlier)."""
        found = self.history[0][1]
        for at, data in self.history:
            if at > moment:
                break
            found = data
        return found

    def run(self) -> None:
        """Ask every tick until stopped."""
        next_at = time.monotonic()
        while not self.stop.is_set():
            next_at += TICK
            try:
                self._tick()
            except (httpx.HTTPError, client.ApiException, Unanswered):
                self.errors += 1
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def _tick(self) -> None:
        now = time.monotonic()
        data = self.bench.secret_data(self.mode)
        if not self.history or self.history[-1][1] != data:
            self.history.append((now, data))
        pods = self.bench.pods(self.mode)
        answers: dict[Credential, bool] = {}

        def accepted(held: tuple[Credential, ...]) -> bool:
            for credential in held:
                if credential not in answers:
                    answers[credential] = self.bench.authenticates(self.mode, credential)
                if answers[credential]:
                    return True
            return False

        failed_env = failed_file = 0
        for uid in pods:
            born = self.born.setdefault(uid, now)
            if not accepted(self.credentials(self._as_of(born))):
                failed_env += 1
            if not accepted(self.credentials(self._as_of(max(born, now - FILE_LAG)))):
                failed_file += 1
        self.ticks.append(Tick(now, len(pods), failed_env, failed_file))


def figures(
    mode: str,
    consumers: Consumers,
    windows: list[tuple[float, float]],
    complete: list[float],
    old_key_gone: list[float],
) -> dict[str, Any]:
    """The report of one mode."""
    per_rotation: dict[str, list[int]] = {"env": [], "file": []}
    outage: dict[str, list[float]] = {"env": [], "file": []}
    requests = 0
    for start, end in windows:
        inside = [t for t in consumers.ticks if start <= t.at < end]
        requests += sum(t.asked for t in inside)
        for column, failed in (("env", "failed_env"), ("file", "failed_file")):
            failing = [t.at for t in inside if getattr(t, failed)]
            per_rotation[column].append(sum(getattr(t, failed) for t in inside))
            outage[column].append(failing[-1] - failing[0] + TICK if failing else 0.0)
    ticks = [t.at for t in consumers.ticks]
    rate = (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 1 else 0.0
    report: dict[str, Any] = {
        "rotations": len(windows),
        "requests": requests,
        "failed_authentications": sum(per_rotation["env"]),
        "failed_authentications_per_rotation": round(
            statistics.fmean(per_rotation["env"]) if windows else 0.0, 1
        ),
        "failed_authentications_by_rotation": per_rotation["env"],
        "outage_seconds": {"p50": pct(outage["env"], 0.5), "max": pct(outage["env"], 1.0)},
        "trigger_to_rollout_complete_seconds": {"p50": pct(complete, 0.5)},
        "mounted_files": {
            "failed_authentications": sum(per_rotation["file"]),
            "failed_authentications_per_rotation": round(
                statistics.fmean(per_rotation["file"]) if windows else 0.0, 1
            ),
            "outage_seconds": {
                "p50": pct(outage["file"], 0.5),
                "max": pct(outage["file"], 1.0),
            },
        },
        "ticks_per_second": round(rate, 2),
        "consumer_errors": consumers.errors,
    }
    if mode == "KeyPair":
        report["old_key_deleted_seconds"] = {"p50": pct(old_key_gone, 0.5)}
    return report
