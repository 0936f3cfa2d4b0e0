"""Burst benchmark: many scheduled rotations due at the same moment, one rate-limited tenant.

On a fresh local control plane and fake tenant (both on 127.0.0.1):

1. N resources (default 300) in one namespace, all ``initialization: Fetch``,
   with a schedule far away; the tenant and the fake allow R requests/s
   (default 10, burst 10). The operator starts and every resource becomes Ready.
2. Every schedule is moved to the same minute, at least ``--lead`` seconds ahead.
3. From that minute on, a watch records when each resource's ``rotationCount``
   goes up. Completion time is the last of those minus the due minute.

Figures (goals from the performance issue):

- completion time / ideal, ideal = Management API requests / R (goal <= 1.15);
- 429 share of Management API answers (goal <= 2 %); failures (goal 0);
- cost per rotation: Auth0 calls by endpoint, and Kubernetes requests by
  resource and verb (from the API server's ``apiserver_request_total``).

Prints the figures and writes ``benchmarks/results/burst.json``. Not a test.

    make bench-burst            # or: python benchmarks/burst.py --resources 300 --rate 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from auth0_rotator_dev.devcluster import ControlPlane
from scale import Bench

RESULTS = Path(__file__).resolve().parent / "results" / "burst.json"
NAMESPACE = "burst"
GROUP, VERSION, PLURAL = "auth0rotator.dev", "v1alpha1", "auth0clientsecrets"
OPERATOR_WRITES = ("auth0clientsecrets", "auth0tenants", "secrets", "events")
"""Resources the operator writes (kwok and the controllers write nodes and leases)."""


def api_requests(plane: ControlPlane) -> Counter[str]:
    """Requests the API server has served so far, as ``"VERB resource[/subresource]"``."""
    text = plane.kubectl_run("get", "--raw", "/metrics", timeout=120)
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        counts[f"{labels.get('verb')} {resource}"] += int(float(line.rsplit(" ", 1)[1]))
    return counts


class BurstBench(Bench):
    """One namespace, one tenant limited to ``rate`` requests/s, ``size`` resources."""

    def __init__(self, size: int, work: Path, rate: float, burst: int) -> None:
        super().__init__(size, work)
        self.rate, self.burst = rate, burst
        self.namespaces = [NAMESPACE]

    def populate(self) -> float:
        """The tenant, its credentials and ``size`` resources with a far-away schedule."""
        began = time.monotonic()
        with self.http as http:
            limit = {"requests_per_second": self.rate, "burst": self.burst}
            http.put("/_fake/settings", json={"rate_limit": limit}).raise_for_status()
        self.create_tenant(NAMESPACE, self.rate, self.burst)
        far = _cron(datetime.now(UTC) + timedelta(days=3))
        self.create_resources(lambda _: (NAMESPACE, far))
        return time.monotonic() - began

    def items(self) -> list[dict[str, Any]]:
        """Every resource, as listed now."""
        custom: Any = client.CustomObjectsApi(self.api)
        listed = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
        return list(listed["items"])

    def ready_count(self) -> int:
        """Resources whose Ready condition is True."""
        return sum(_ready(item) for item in self.items())

    def schedule_all(self, due: datetime) -> None:
        """Move every schedule to ``due`` (a whole UTC minute)."""
        custom: Any = client.CustomObjectsApi(self.api)
        expression = _cron(due)

        def move(i: int) -> None:
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, f"app-{i}", {"spec": {"schedule": expression}}
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(move, range(self.size)))

    def auth0_calls(self) -> int:  # the base class's helper counts; here the log is needed
        """Requests the fake tenant has received so far."""
        return len(self.calls())

    def calls(self) -> list[dict[str, Any]]:
        """The fake tenant's call log."""
        with self.http as http:
            return list(http.get("/_fake/calls").json())


def _cron(moment: datetime) -> str:
    """A cron expression firing at ``moment``'s minute (UTC), once a year."""
    return f"{moment.minute} {moment.hour} {moment.day} {moment.month} *"


def _ready(item: dict[str, Any]) -> bool:
    conditions = (item.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _count(item: dict[str, Any]) -> int:
    return int((item.get("status") or {}).get("rotationCount") or 0)


class Completions:
    """Watches the resources and notes when each one's rotationCount first rises."""

    def __init__(self, bench: BurstBench, baseline: dict[str, int], resource_version: str):
        self.baseline = baseline
        self.done: dict[str, float] = {}
        self.finished = threading.Event()
        self._watch = watch.Watch()  # type: ignore[no-untyped-call]
        custom: Any = client.CustomObjectsApi(bench.api)
        self._thread = threading.Thread(
            target=self._run, args=(custom, resource_version), daemon=True
        )
        self._thread.start()

    def _run(self, custom: Any, resource_version: str) -> None:
        for event in self._watch.stream(  # type: ignore[no-untyped-call]
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            resource_version=resource_version,
            timeout_seconds=3600,
        ):
            item = event["object"]
            name = item["metadata"]["name"]
            if name not in self.done and _count(item) > self.baseline.get(name, 0):
                self.done[name] = time.time()
                if len(self.done) == len(self.baseline):
                    self.finished.set()
                    self._watch.stop()  # type: ignore[no-untyped-call]
                    return

    def stop(self) -> None:
        """Stop watching."""
        self._watch.stop()  # type: ignore[no-untyped-call]


def measure(size: int, rate: float, burst: int, lead: float, timeout: float) -> dict[str, Any]:
    """All figures for one burst."""
    with tempfile.TemporaryDirectory(prefix="burst-") as tmp:
        bench = BurstBench(size, Path(tmp), rate, burst)
        try:
            bench.start()
            bench.populate()
            bench.start_operator(Path(tmp) / "operator.log")
            while bench.ready_count() < size:
                time.sleep(2)
            print(f"{size} resources Ready; moving every schedule to one minute", flush=True)
            due = (datetime.now(UTC) + timedelta(seconds=lead + 60)).replace(
                second=0, microsecond=0
            )
            bench.schedule_all(due)
            wanted = due.isoformat().replace("+00:00", "Z")
            while True:
                items = bench.items()
                if all(
                    (i.get("status") or {}).get("nextRotationTime") == wanted
                    and (i.get("status") or {}).get("observedGeneration")
                    == i["metadata"]["generation"]
                    for i in items
                ):
                    break
                if datetime.now(UTC) >= due:
                    raise SystemExit(f"schedules not all moved before {due}; raise --lead")
                time.sleep(1)
            listed: Any = client.CustomObjectsApi(bench.api).list_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL
            )
            baseline = {i["metadata"]["name"]: _count(i) for i in listed["items"]}
            with bench.http as http:
                http.delete("/_fake/calls").raise_for_status()
                limit = {"requests_per_second": rate, "burst": burst}
                http.put("/_fake/settings", json={"rate_limit": limit}).raise_for_status()
            requests_before = api_requests(bench.plane)
            completions = Completions(bench, baseline, listed["metadata"]["resourceVersion"])
            print(f"all due at {wanted}; waiting", flush=True)
            finished = completions.finished.wait(
                timeout=(due - datetime.now(UTC)).total_seconds() + timeout
            )
            completions.stop()
            time.sleep(3)  # the last completions' trailing writes (Events)
            requests = api_requests(bench.plane) - requests_before
            calls = bench.calls()
            items = bench.items()
        finally:
            bench.stop()

    management = [c for c in calls if c["endpoint"] != "token"]
    too_many = sum(1 for c in management if c["status"] == 429)
    ideal = len([c for c in management if c["status"] != 429]) / rate
    last = max(completions.done.values(), default=float("nan"))
    completion = last - due.timestamp()
    rotated = sum(1 for i in items if _count(i) == baseline.get(i["metadata"]["name"], 0) + 1)
    doubled = sum(1 for i in items if _count(i) > baseline.get(i["metadata"]["name"], 0) + 1)
    not_ready = sum(1 for i in items if not _ready(i))
    by_endpoint = Counter(f"{c['endpoint']} {c['status']}" for c in calls)
    writes = {
        k: v
        for k, v in requests.items()
        if k.split()[0] in ("POST", "PUT", "PATCH", "DELETE")
        and k.split()[1].split("/")[0] in OPERATOR_WRITES
    }
    reads = {k: v for k, v in requests.items() if k.split()[0] in ("GET", "LIST") and v}
    return {
        "scenario": {"resources": size, "rate_limit": rate, "burst": burst},
        "completed": finished,
        "completion_seconds": round(completion, 2),
        "ideal_seconds": round(ideal, 2),
        "completion_over_ideal": round(completion / ideal, 3) if ideal else None,
        "management_requests": len(management),
        "share_429": round(too_many / len(management), 4) if management else 0.0,
        "rotated_once": rotated,
        "rotated_more_than_once": doubled,
        "failures": size - rotated,
        "not_ready_at_end": not_ready,
        "per_rotation": {
            "auth0_calls": {k: round(v / size, 3) for k, v in sorted(by_endpoint.items())},
            "kubernetes_writes": {k: round(v / size, 2) for k, v in sorted(writes.items()) if v},
            "kubernetes_writes_total": round(sum(writes.values()) / size, 2),
            "kubernetes_reads": {k: round(v / size, 2) for k, v in sorted(reads.items())},
        },
        "goals": {
            "completion_over_ideal": "<= 1.15",
            "share_429": "<= 0.02",
            "failures": "== 0",
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> int:
    """Run one burst and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--lead", type=float, default=30.0, help="seconds before the due minute")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    figures = measure(args.resources, args.rate, args.burst, args.lead, args.timeout)
    text = json.dumps(figures, indent=2)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    print(f"wrote {args.output}")
    return 0 if figures["completed"] else 1


if __name__ == "__main__":
    sys.exit(main())
