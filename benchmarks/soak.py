"""Soak: every strategy at once, under overlapping faults of every family, invariants throughout.

The world is in ``soak_world.py`` (40 resources, 4 namespaces, 2 tenants, 2
operator replicas with leader election). For ``SOAK_MINUTES`` (default 20) a
steady stream of triggers runs (annotations every few seconds, spec changes,
schedules firing every minute) while faults drawn from a seeded schedule hit
it, overlapping: SIGKILL of the leader, SIGTERM of a replica, a kube-apiserver
restart, Auth0 5xx, 429 storms, timeouts, reset-after-commit, a token
endpoint outage, propagation delay spikes, a target Secret deleted, a managed
key edited, a resource deleted mid-rotation (and created again), the tenant's
credentials Secret broken for a while, a rollout stalled for a while.

Checked every 15 s: a resource Ready with no rotation open has a Secret that
authenticates (a failure must persist for a minute to count), at most two
enabled keys per application, each replica's RSS and open file descriptors.
At the end, faults stop, every resource gets a last annotation, and once all
settle: every Secret authenticates (lost), Auth0 changes per application do
not exceed the triggers it was given (doubled), one key per ``KeyPair``
application (orphans), every last trigger handled, no secret value in the
logs, Events, status or metrics, and the replicas' memory and descriptors.

Usage: python benchmarks/soak.py [--minutes 20] [--seed N]
Writes benchmarks/results/soak.json; on failure also benchmarks/results/soak-failure/
(operator logs, the fake tenant's call log).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import urllib3
from kubernetes import client

from auth0_rotator_dev.devcluster import ControlPlane, kube_bin_dir
from soak_world import GROUP, NAMESPACES, Resource, World

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "soak.json"
FAILURE_DIR = REPO / "benchmarks" / "results" / "soak-failure"
IDENTITIES = ("op-a", "op-b")
FAMILIES = {
    "kill-leader": 2,
    "term-replica": 1,
    "apiserver-restart": 1,
    "auth0-5xx": 2,
    "auth0-429": 2,
    "auth0-timeout": 1,
    "reset-after-commit": 2,
    "token-outage": 1,
    "propagation-spike": 1,
    "delete-secret": 2,
    "edit-key": 2,
    "delete-resource": 1,
    "tenant-credentials": 1,
    "stall-rollout": 1,
}
"""Fault families and their weights in the schedule."""
HARNESS_ERRORS = (client.ApiException, httpx.HTTPError, OSError, urllib3.exceptions.HTTPError)
"""What the soak's own calls may raise while faults hit (an API server restart): counted."""
CHECK_EVERY = 15.0
PERSISTENT = 4
"""Consecutive failed checks (a minute) before a Secret that does not authenticate counts."""


def schedule(seed: int, seconds: float) -> list[tuple[float, str, int]]:
    """The fault schedule: (offset in seconds, family, a number choosing its target)."""
    rng = random.Random(seed)
    names, weights = list(FAMILIES), list(FAMILIES.values())
    plan, at = [], rng.uniform(10, 20)
    while at < seconds:
        plan.append((round(at, 1), rng.choices(names, weights)[0], rng.randrange(1 << 30)))
        at += rng.uniform(6, 18)
    return plan


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    """The Ready condition of a status ({} if none)."""
    found: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {}
    )
    return found


class Soak:
    """Drives triggers and faults, checks invariants, and reports."""

    def __init__(self, world: World, seed: int, minutes: float) -> None:
        self.world, self.seed, self.minutes = world, seed, minutes
        self.rng = random.Random(seed + 1)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.triggers: Counter[str] = Counter()
        """Triggers given per application (annotations, spec changes, creations, drifts)."""
        self.key_toggle: dict[str, bool] = defaultdict(bool)
        self.faults: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.undo: list[tuple[float, str, Callable[[], None]]] = []
        self.suspects: Counter[str] = Counter()
        self.violations: list[str] = []
        self.samples: dict[int, list[tuple[float, int, int, int]]] = defaultdict(list)
        """pid -> (time, RSS kB, open descriptors, event-loop tasks)."""
        self.incarnations: dict[int, str] = {}
        self.started = self.created = time.monotonic()
        self.errors: Counter[str] = Counter()
        self.exits: dict[int, int] = {}
        """pid -> exit code of every replica that ended."""
        self.exit_codes: Counter[str] = Counter()

    # -- triggers ----------------------------------------------------------------------

    def _annotate(self, r: Resource, value: str) -> None:
        self.world.custom.patch_namespaced_custom_object(
            *GROUP, r.namespace, "auth0clientsecrets", r.name,
            {"metadata": {"annotations": {"auth0rotator.dev/rotate": value}}},
        )  # fmt: skip
        with self.lock:
            self.triggers[r.client_id] += 1

    def drive_triggers(self) -> None:
        """Annotations every 3-6 s; a spec change every 15-30 s."""
        n, next_spec = 0, time.monotonic() + 15
        while not self.stop.wait(self.rng.uniform(3, 6)):
            try:
                n += 1
                self._annotate(self.rng.choice(self.world.resources), f"a{n}")
                if time.monotonic() >= next_spec:
                    next_spec = time.monotonic() + self.rng.uniform(15, 30)
                    r = self.rng.choice([r for r in self.world.resources if r.trigger == "spec"])
                    self.key_toggle[r.client_id] ^= True
                    key = "client_id_alt" if self.key_toggle[r.client_id] else "client_id"
                    self.world.custom.patch_namespaced_custom_object(
                        *GROUP, r.namespace, "auth0clientsecrets", r.name,
                        {"spec": {"keys": {"clientId": key}}},
                    )  # fmt: skip
                    with self.lock:
                        self.triggers[r.client_id] += 1
            except HARNESS_ERRORS as exc:
                self.errors[f"trigger: {type(exc).__name__}"] += 1

    # -- faults ------------------------------------------------------------------------

    def _later(self, delay: float, what: str, action: Callable[[], None]) -> None:
        with self.lock:
            self.undo.append((time.monotonic() + delay, what, action))

    def _run_due(self, everything: bool = False) -> None:
        with self.lock:
            due = [u for u in self.undo if everything or u[0] <= time.monotonic()]
            self.undo = [u for u in self.undo if u not in due]
        for _, what, action in sorted(due, key=lambda u: u[0]):
            try:
                action()
            except HARNESS_ERRORS as exc:
                self.errors[f"undo {what}: {type(exc).__name__}"] += 1

    def _fault(self, **fault: Any) -> None:
        self.world.http.post("/_fake/faults", json=fault).raise_for_status()

    def _restart(self, identity: str) -> None:
        self.world.start_operator(identity)
        proc = self.world.processes.named[identity]
        self.incarnations[proc.pid] = identity

    def inject(self, family: str, pick: int) -> bool:
        """Apply one fault; False when it had nothing to act on."""
        w, rng = self.world, random.Random(pick)
        r = rng.choice(w.resources)
        ns = rng.choice(NAMESPACES)
        if family in ("kill-leader", "term-replica"):
            identity = w.leader() if family == "kill-leader" else rng.choice(IDENTITIES)
            if identity not in IDENTITIES or w.processes.named[identity].poll() is not None:
                return False
            sig = signal.SIGKILL if family == "kill-leader" else signal.SIGTERM
            w.processes.kill(identity, sig)  # the supervisor starts it again, as kubelet would
        elif family == "apiserver-restart":
            w.plane.restart_apiserver(down_for=3)
        elif family == "auth0-5xx":
            self._fault(endpoint="*", status=rng.choice([500, 502, 503]), count=15)
        elif family == "auth0-429":
            self._fault(endpoint="*", status=429, count=30)
        elif family == "auth0-timeout":
            self._fault(endpoint="*", latency=8.0, count=4)
        elif family == "reset-after-commit":
            endpoint = rng.choice(
                ["patch-client", "rotate-secret", "create-credential", "patch-credential"]
            )
            self._fault(endpoint=endpoint, reset_after_commit=True, count=1)
        elif family == "token-outage":
            self._fault(endpoint="token", status=503, count=40)
        elif family == "propagation-spike":
            w.settings(propagation_delay=20.0)
            self._later(40, "propagation back", lambda: w.settings(propagation_delay=1.0))
        elif family == "delete-secret":
            if w.secret(r.namespace, r.name) is None:
                return False
            w.core.delete_namespaced_secret(r.name, r.namespace)
            self._drift(r)
        elif family == "edit-key":
            key = "private_key" if r.strategy == "KeyPair" else "client_secret"
            if w.secret(r.namespace, r.name) is None:
                return False
            w.core.patch_namespaced_secret(r.name, r.namespace, {"stringData": {key: "edited"}})
            self._drift(r)
        elif family == "delete-resource":
            spec = r.spec("client_id_alt" if self.key_toggle[r.client_id] else "client_id")
            w.custom.delete_namespaced_custom_object(
                *GROUP, r.namespace, "auth0clientsecrets", r.name
            )
            self._later(5, f"create {r.name}", lambda: self._recreate(r, spec))
        elif family == "tenant-credentials":
            index = NAMESPACES.index(ns)
            broken = w.credentials_secret(index < 2, broken=True)
            w.core.replace_namespaced_secret("credentials", ns, broken)
            good = w.credentials_secret(index < 2)
            restore = w.core.replace_namespaced_secret
            self._later(20, f"credentials {ns}", lambda: restore("credentials", ns, good))
        elif family == "stall-rollout":
            stuck = {"spec": {"template": {"spec": {"nodeSelector": {"none": "x"}}}}}
            w.apps.patch_namespaced_deployment("web", ns, stuck)
            free = {"spec": {"template": {"spec": {"nodeSelector": None}}}}
            self._later(
                60, f"unstall {ns}", lambda: w.apps.patch_namespaced_deployment("web", ns, free)
            )
        return True

    def _drift(self, r: Resource) -> None:
        if r.strategy == "KeyPair":  # nothing to restore from: a new key is registered
            with self.lock:
                self.triggers[r.client_id] += 1

    def _recreate(self, r: Resource, spec: dict[str, Any]) -> None:
        self.world.create(r.namespace, "auth0clientsecrets", "Auth0ClientSecret", r.name, spec)
        if r.strategy == "KeyPair":  # creation registers a key
            with self.lock:
                self.triggers[r.client_id] += 1

    def supervise(self) -> None:
        """Start a replica again 2 s after it exited (kubelet's restartPolicy: Always)."""
        for identity in IDENTITIES:
            proc = self.world.processes.named[identity]
            code = proc.poll()
            if code is None or proc.pid in self.exits:
                continue
            self.exits[proc.pid] = code
            self.exit_codes[f"{identity} exit {code}"] += 1
            self._later(2, f"start {identity}", partial(self._restart, identity))

    def drive_faults(self, plan: list[tuple[float, str, int]]) -> None:
        """Apply the schedule; run what is due to be undone; keep both replicas running."""
        for at, family, pick in plan:
            while not self.stop.is_set() and time.monotonic() - self.started < at:
                self.supervise()
                self._run_due()
                self.stop.wait(0.5)
            if self.stop.is_set():
                return
            try:
                applied = self.inject(family, pick)
            except (*HARNESS_ERRORS, RuntimeError) as exc:
                self.errors[f"fault {family}: {type(exc).__name__}"] += 1
                applied = False
            (self.faults if applied else self.skipped)[family] += 1
            print(f"[{time.monotonic() - self.started:7.1f}s] {family}"
                  f"{'' if applied else ' (nothing to act on)'}", flush=True)  # fmt: skip
        while not self.stop.wait(0.5):
            self.supervise()
            self._run_due()

    # -- checks ------------------------------------------------------------------------

    def sample(self) -> None:
        """RSS, open descriptors and event-loop tasks of every operator process alive."""
        for identity in IDENTITIES:
            proc = self.world.processes.named.get(identity)
            if proc is None or proc.poll() is not None:
                continue
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                rss = int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
                fds = sum(1 for _ in Path(f"/proc/{proc.pid}/fd").iterdir())
                port = self.world.metrics_ports[identity]
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                tasks = next(
                    int(float(line.split()[-1]))
                    for line in text.splitlines()
                    if line.startswith("auth0_rotator_event_loop_tasks ")
                )
            except (OSError, StopIteration, httpx.HTTPError, ValueError):
                continue
            self.samples[proc.pid].append((time.monotonic(), rss, fds, tasks))

    def check(self) -> None:
        """The invariants that hold at every moment."""
        w = self.world
        for r in w.resources:
            obj = w.get(r)
            status = (obj or {}).get("status") or {}
            ready = _ready(status)
            data = w.secret(r.namespace, r.name)
            if obj is None or status.get("rotation") or ready.get("status") != "True" or not data:
                self.suspects[r.client_id] = 0
                continue
            try:
                ok = w.authenticates(r, data)
            except httpx.HTTPError:
                ok = None
            if ok is None:
                continue
            self.suspects[r.client_id] = 0 if ok else self.suspects[r.client_id] + 1
            if self.suspects[r.client_id] == PERSISTENT:
                self.violations.append(
                    f"{r.namespace}/{r.name}: Ready but its Secret has not authenticated for "
                    f"{PERSISTENT * CHECK_EVERY:.0f}s (revision {status.get('secretRevision')})"
                )
            if r.strategy == "KeyPair":
                enabled = w.fake_client(r.client_id).get("enabled_credentials") or []
                if len(enabled) > 2:
                    self.violations.append(f"{r.client_id}: {len(enabled)} keys enabled")

    def watch(self) -> None:
        """Check and sample every :data:`CHECK_EVERY` seconds."""
        while not self.stop.wait(CHECK_EVERY):
            self.sample()
            try:
                self.check()
            except HARNESS_ERRORS as exc:
                self.errors[f"check: {type(exc).__name__}"] += 1

    # -- the run -----------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Start everything, soak, settle, and report."""
        w = self.world
        for identity in IDENTITIES:
            self._restart(identity)
        self._settle("initial", deadline=300, annotate=False)
        self.started = time.monotonic()
        plan = schedule(self.seed, self.minutes * 60)
        print(f"seed {self.seed}; fault schedule ({len(plan)} faults):", flush=True)
        print(json.dumps(plan), flush=True)
        threads = [
            threading.Thread(target=self.drive_triggers, daemon=True),
            threading.Thread(target=self.drive_faults, args=(plan,), daemon=True),
            threading.Thread(target=self.watch, daemon=True),
        ]
        for t in threads:
            t.start()
        self.stop.wait(self.minutes * 60)
        self.stop.set()
        for t in threads:
            t.join(120)
        soaked = time.monotonic() - self.started
        # Faults off: undo what is pending, both replicas up, then a last trigger for all.
        self.supervise()
        self._run_due(everything=True)
        w.http.delete("/_fake/faults")
        w.settings(propagation_delay=1.0)
        time.sleep(20)
        settled = self._settle("final", deadline=600, annotate=True)
        self.sample()
        return self._report(plan, soaked, settled)

    def _settle(self, request: str, deadline: float, annotate: bool) -> bool:
        """Wait until every resource is Ready, no rotation open (and ``request`` handled)."""
        w = self.world
        if annotate:
            for r in w.resources:
                if w.get(r) is not None:
                    self._annotate(r, request)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            pending = []
            for r in w.resources:
                status = (w.get(r) or {}).get("status") or {}
                ready = _ready(status)
                handled = not annotate or status.get("lastRotateRequest") == request
                if status.get("rotation") or ready.get("status") != "True" or not handled:
                    pending.append(r)
            if not pending:
                return True
            time.sleep(5)
        print(f"not settled: {[f'{r.namespace}/{r.name}' for r in pending]}", flush=True)
        return False

    def _report(
        self, plan: list[tuple[float, str, int]], soaked: float, settled: bool
    ) -> dict[str, Any]:
        w = self.world
        lost, doubled, orphans, left_by_deleted, unhandled, rotations = [], 0, 0, 0, [], 0
        calls = w.http.get("/_fake/calls").json()
        created = Counter(
            c["client_id"]
            for c in calls
            if c["endpoint"] == "create-credential" and c["status"] == 201
        )
        minutes_alive = (time.monotonic() - self.created) / 60 + 1
        for r in w.resources:
            obj = w.get(r) or {}
            status = obj.get("status") or {}
            rotations += int(status.get("rotationCount") or 0)
            if status.get("lastRotateRequest") != "final":
                unhandled.append(f"{r.namespace}/{r.name}")
            if not self._authenticates_soon(r):
                lost.append(f"{r.namespace}/{r.name}")
            fake = w.fake_client(r.client_id)
            bound = self.triggers[r.client_id] + (minutes_alive if r.trigger == "schedule" else 0)
            if r.strategy == "KeyPair":
                changes = created[r.client_id]
                bound += 1  # the key registered at creation
                uid = obj.get("metadata", {}).get("uid", "")
                names = [c.get("name", "") for c in fake["credentials"]]
                mine = [n for n in names if n.startswith(f"auth0-rotator/{uid}/")]
                orphans += max(len(mine) - 1, 0)
                left_by_deleted += sum(
                    1 for n in names if n.startswith("auth0-rotator/") and n not in mine
                )
            else:
                changes = fake["secret_changes"]
            doubled += max(int(changes - bound), 0)
        leaks = self._leaks()
        runs = self._memory()
        passed = settled and not (
            lost or doubled or orphans or unhandled or leaks or self.violations
        )
        return {
            "passed": passed,
            "seed": self.seed,
            "minutes": self.minutes,
            "soaked_seconds": round(soaked),
            "resources": len(w.resources),
            "faults_by_family": dict(sorted(self.faults.items())),
            "faults_with_nothing_to_act_on": dict(sorted(self.skipped.items())),
            "faults_injected": sum(self.faults.values()),
            "triggers_given": sum(self.triggers.values()),
            "rotations": rotations,
            "auth0_secret_changes": sum(
                w.fake_client(r.client_id)["secret_changes"] for r in w.resources
            ),
            "keys_registered": sum(created.values()),
            "lost": len(lost),
            "lost_resources": lost,
            "doubled": doubled,
            "orphans": orphans,
            "keys_left_by_deleted_resources": left_by_deleted,
            "unhandled_last_triggers": unhandled,
            "violations": self.violations,
            "leaked_values": leaks,
            "operator_processes": runs,
            "operator_exits": dict(sorted(self.exit_codes.items())),
            "harness_errors": dict(self.errors),
            "fault_schedule": plan,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _authenticates_soon(self, r: Resource) -> bool:
        """Whether ``r``'s Secret authenticates, asking up to 3 times 2 s apart."""
        for _ in range(3):
            data = self.world.secret(r.namespace, r.name) or {}
            if self.world.authenticates(r, data):
                return True
            time.sleep(2)
        return False

    def _leaks(self) -> list[str]:
        """Where a secret value shows: operator logs, Events, status, metrics."""
        w = self.world
        values = set(w.http.get("/_fake/issued-secrets").json())
        for r in w.resources:
            data = w.secret(r.namespace, r.name) or {}
            if "private_key" in data:
                values.add(data["private_key"].splitlines()[1])  # one line of the key's body
        values.add(w.m2m_key.reveal().splitlines()[1])
        values = {v for v in values if len(v) >= 20}
        places: dict[str, str] = {}
        for log in w.tmp.glob("op-*.log"):
            places[log.name] = log.read_text(errors="replace")
        for ns in NAMESPACES:
            events = w.core.list_namespaced_event(ns).items
            places[f"events {ns}"] = "\n".join(f"{e.reason} {e.message}" for e in events)
            objs = w.custom.list_namespaced_custom_object(*GROUP, ns, "auth0clientsecrets")
            places[f"status {ns}"] = json.dumps([o.get("status") for o in objs["items"]])
        for identity, port in w.metrics_ports.items():
            with contextlib.suppress(httpx.HTTPError):
                places[f"metrics {identity}"] = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        return sorted(place for place, text in places.items() for v in values if v in text)

    def _memory(self) -> list[dict[str, Any]]:
        """Per operator process: lifetime; RSS (MB), descriptors and tasks over it.

        ``warm`` is the sample a quarter into the process's life (after its
        start-up and the first rotations), the baseline a leak grows from.
        """
        runs = []
        for pid, samples in self.samples.items():
            if len(samples) < 4:
                continue
            warm = samples[len(samples) // 4]

            def series(
                k: int, scale: float = 1.0, s: list[Any] = samples, w: Any = warm
            ) -> dict[str, float]:
                return {
                    "start": round(s[0][k] / scale, 1),
                    "warm": round(w[k] / scale, 1),
                    "end": round(s[-1][k] / scale, 1),
                    "peak": round(max(x[k] for x in s) / scale, 1),
                }

            runs.append({
                "identity": self.incarnations.get(pid, "?"),
                "minutes": round((samples[-1][0] - samples[0][0]) / 60, 1),
                "rss_mb": series(1, 1024),
                "open_fds": series(2),
                "event_loop_tasks": series(3),
            })  # fmt: skip
        return sorted(runs, key=lambda run: -run["minutes"])


def main() -> None:
    """Run the soak and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 20)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", 0)) or None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    # SIGTERM (a CI timeout, Ctrl-C's cousin) unwinds, so everything started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        plane = ControlPlane(kube_bin_dir(), tmp / "cluster", nodes=1).start()
        world = World(plane, tmp)
        try:
            world.start_fake()
            world.setup_cluster()
            result = Soak(world, seed, args.minutes).run()
            if not result["passed"]:
                shutil.rmtree(FAILURE_DIR, ignore_errors=True)
                FAILURE_DIR.mkdir(parents=True)
                for log in tmp.glob("op-*.log"):
                    shutil.copy(log, FAILURE_DIR / log.name)
                (FAILURE_DIR / "fake-calls.json").write_text(
                    json.dumps(world.http.get("/_fake/calls").json(), indent=1)
                )
        finally:
            world.processes.stop()
            plane.stop()
    text = json.dumps(result, indent=2)
    print(text)
    args.output.write_text(text + "\n")
    outcome = "PASSED" if result["passed"] else f"FAILED: see {FAILURE_DIR}"
    print(f"wrote {args.output}; {outcome}")
    raise SystemExit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
