"""Scale benchmark: idle cost and restart time with thousands of Auth0ClientSecrets.

For each size N (default 2,000 and 10,000) on a fresh local control plane and
fake tenant:

1. N resources in 10 namespaces, schedules spread over a week, all ``Fetch``.
2. The operator starts; time until every resource is Ready, and peak RSS.
3. Idle for ``--idle`` seconds: CPU of the operator process, steady RSS,
   Auth0 requests, and Kubernetes writes (from the API server's own
   ``apiserver_request_total``, for the resources the operator writes).
4. Restart (SIGTERM, start again): time until the work queue has reconciled
   every resource once and is empty, Auth0 calls made, rotations caused.

Prints the figures and writes ``benchmarks/results/scale.json``. Not a test:
it takes minutes per size. With ``--profile`` each phase (start, idle,
restart) is sampled with py-spy (``.venv/bin/pip install py-spy``) and the functions
holding most samples are added to the results.

    make bench-scale            # or: python benchmarks/scale.py --sizes 2000 --idle 120
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config

from auth0_rotator_dev.devcluster import ControlPlane, kube_bin_dir
from auth0_rotator_dev.devcluster.cluster import free_port

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "scale.json"
M2M_ID, M2M_SECRET = "bench-m2m", "bench-management-secret-for-the-local-fake-only"
PROFILES = Path(tempfile.gettempdir()) / "auth0-rotator-profiles"
"""Where ``--profile`` leaves py-spy's raw stacks (not committed: megabytes)."""
NAMESPACES = 10
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")
OUR_RESOURCES = ("auth0clientsecrets", "auth0tenants", "secrets", "events")


def _proc_stat(pid: int) -> tuple[float, int, int]:
    """(CPU seconds, RSS kB, peak RSS kB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return cpu, rss, hwm


def _api_writes(plane: ControlPlane) -> int:
    """Write requests the API server has served for the resources the operator writes."""
    text = plane.kubectl_run("get", "--raw", "/metrics", timeout=120)
    total = 0
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if labels.get("verb") in WRITE_VERBS and labels.get("resource") in OUR_RESOURCES:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


class Profiler:
    """py-spy sampling one process until stopped; summarises where the samples fell."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "50",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> dict[str, Any]:
        """Stop sampling; the top functions by own and by inclusive samples."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        own: dict[str, int] = {}
        inclusive: dict[str, int] = {}
        total = 0
        for line in self.out.read_text().splitlines() if self.out.exists() else []:
            stack, _, count_text = line.rpartition(" ")
            count = int(count_text)
            frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";") if f]
            if not frames:
                continue
            total += count
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count

        def top(table: dict[str, int]) -> list[tuple[str, float]]:
            ranked = sorted(table.items(), key=lambda item: -item[1])[:15]
            return [(name, round(100 * n / max(total, 1), 1)) for name, n in ranked]

        return {"samples": total, "own_percent": top(own), "inclusive_percent": top(inclusive)}


def _scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for name in ("auth0_rotator_reconciles_total", "auth0_rotator_queue_depth"):
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        found[name] = float(match.group(1)) if match else -1.0
    return found


class Bench:
    """One size: control plane, fake tenant and operator process."""

    def __init__(self, size: int, work: Path) -> None:
        self.size = size
        self.work = work
        self.plane = ControlPlane(kube_bin_dir(), work / "plane", nodes=1)
        self.fake_port = free_port()
        self.metrics_port = free_port()
        self.fake: subprocess.Popen[str] | None = None
        self.operator: subprocess.Popen[bytes] | None = None
        self.api: Any = None
        self.namespaces = [f"s-{n}" for n in range(NAMESPACES)]
        """The namespaces the operator serves."""

    def start(self) -> None:
        """Control plane with the CRDs, and the fake tenant with the M2M application."""
        self.plane.start()
        self.plane.kubectl_run("apply", "-f", str(REPO / "crds"))
        self.plane.kubectl_run(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"
        )
        self.api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.plane.kubeconfig)
        )
        seed = self.work / "seed.json"
        audience = f"https://127.0.0.1:{self.fake_port}/api/v2/"
        seed.write_text(
            json.dumps(
                {
                    "clients": [
                        {
                            "client_id": M2M_ID,
                            "client_secret": M2M_SECRET,
                            "grants": {audience: ["read:client_keys", "update:client_keys"]},
                        }
                    ]
                }
            )
        )
        self.fake = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "auth0_rotator.cli",
                "fake-auth0",
                "--listen",
                f"127.0.0.1:{self.fake_port}",
                "--tls-dir",
                str(self.work / "tls"),
                "--seed",
                str(seed),
                "--rate-limit",
                "2000",
                "--burst",
                "2000",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.fake.stdout is not None
        assert "serving at" in self.fake.stdout.readline()

    @property
    def http(self) -> httpx.Client:
        """A client of the fake tenant (its CA trusted)."""
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.fake_port}",
            verify=str(self.work / "tls" / "ca.crt"),
            timeout=30,
        )

    def create_tenant(self, namespace: str, rate: float, burst: int) -> None:
        """The namespace, its credentials Secret and Auth0Tenant ``default`` (the fake)."""
        core: Any = client.CoreV1Api(self.api)
        core.create_namespace({"metadata": {"name": namespace}})
        core.create_namespaced_secret(
            namespace,
            {
                "metadata": {"name": "creds", "labels": {"auth0rotator.dev/credentials": "true"}},
                "stringData": {"client_id": M2M_ID, "client_secret": M2M_SECRET},
            },
        )
        custom: Any = client.CustomObjectsApi(self.api)
        custom.create_namespaced_custom_object(
            "auth0rotator.dev",
            "v1alpha1",
            namespace,
            "auth0tenants",
            {
                "apiVersion": "auth0rotator.dev/v1alpha1",
                "kind": "Auth0Tenant",
                "metadata": {"name": "default"},
                "spec": {
                    "domain": f"127.0.0.1:{self.fake_port}",
                    "credentials": {"secretRef": {"name": "creds"}},
                    "rateLimit": {"requestsPerSecond": rate, "burst": burst},
                },
            },
        )

    def create_resources(self, place: Callable[[int], tuple[str, str]]) -> None:
        """Fake clients ``c-<i>`` and Auth0ClientSecrets ``app-<i>`` for i < N.

        ``place(i)`` gives resource i's namespace and cron schedule.
        """
        custom: Any = client.CustomObjectsApi(self.api)
        with self.http as http:

            def make_client(i: int) -> None:
                http.post("/_fake/clients", json={"client_id": f"c-{i}"}).raise_for_status()

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(make_client, range(self.size)))

        def make_resource(i: int) -> None:
            namespace, schedule = place(i)
            custom.create_namespaced_custom_object(
                "auth0rotator.dev",
                "v1alpha1",
                namespace,
                "auth0clientsecrets",
                {
                    "apiVersion": "auth0rotator.dev/v1alpha1",
                    "kind": "Auth0ClientSecret",
                    "metadata": {"name": f"app-{i}"},
                    "spec": {"clientId": f"c-{i}", "schedule": schedule},
                },
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(make_resource, range(self.size)))

    def populate(self) -> float:
        """Create the tenants and N resources; return the seconds it took."""
        began = time.monotonic()
        for ns in self.namespaces:
            self.create_tenant(ns, rate=500, burst=500)
        # Schedules spread over the week, one fire per minute slot, on the six days
        # other than today (UTC): nothing is due while the idle cost is measured.
        today = (datetime.now(UTC).isoweekday()) % 7  # cron: 0 = Sunday

        def place(i: int) -> tuple[str, str]:
            day = (today + 1 + (i // 1440) % 6) % 7
            return f"s-{i % NAMESPACES}", f"{i % 60} {(i // 60) % 24} * * {day}"

        self.create_resources(place)
        return time.monotonic() - began

    def start_operator(self, log: Path) -> None:
        """``auth0-rotator run`` on the benchmark namespaces, logging to ``log``."""
        env = {**os.environ, "KUBECONFIG": str(self.plane.kubeconfig)}
        with log.open("ab") as out:
            self.operator = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "auth0_rotator.cli",
                    "run",
                    *[arg for ns in self.namespaces for arg in ("-n", ns)],
                    "--extra-ca-file",
                    str(self.work / "tls" / "ca.crt"),
                    "--allowed-domain",
                    f"127.0.0.1:{self.fake_port}",
                    "--metrics",
                    f"127.0.0.1:{self.metrics_port}",
                    "--liveness",
                    "",
                    "--identity",
                    "bench",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ready_count(self) -> int:
        """Resources whose Ready condition is True."""
        custom: Any = client.CustomObjectsApi(self.api)
        count = 0
        for n in range(NAMESPACES):
            items = custom.list_namespaced_custom_object(
                "auth0rotator.dev", "v1alpha1", f"s-{n}", "auth0clientsecrets"
            )["items"]
            for item in items:
                conditions = (item.get("status") or {}).get("conditions") or []
                count += any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return count

    def rotations(self) -> int:
        """Sum of rotationCount over every resource."""
        custom: Any = client.CustomObjectsApi(self.api)
        total = 0
        for n in range(NAMESPACES):
            listed = custom.list_namespaced_custom_object(
                "auth0rotator.dev", "v1alpha1", f"s-{n}", "auth0clientsecrets"
            )
            for item in listed["items"]:
                total += int((item.get("status") or {}).get("rotationCount") or 0)
        return total

    def auth0_calls(self) -> int:
        """Requests the fake tenant has received so far."""
        with self.http as http:
            return len(http.get("/_fake/calls").json())

    def stop(self) -> None:
        """Stop the operator, the fake tenant and the control plane."""
        for proc in (self.operator, self.fake):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
        if self.api is not None:
            self.api.close()
        self.plane.stop()


def measure(size: int, idle: float, profile: bool = False) -> dict[str, Any]:
    """All figures for one size."""
    profiles: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix=f"scale-{size}-") as tmp:
        bench = Bench(size, Path(tmp))
        try:
            bench.start()
            populate = bench.populate()
            print(f"[{size}] {size} resources created in {populate:.0f}s", flush=True)
            began = time.monotonic()
            bench.start_operator(Path(tmp) / "operator.log")
            assert bench.operator is not None
            profiler = (
                Profiler(bench.operator.pid, PROFILES / f"start-{size}.txt") if profile else None
            )
            while bench.ready_count() < size:
                time.sleep(5)
            initial = time.monotonic() - began
            if profiler is not None:
                profiles["start"] = profiler.stop()
            _, _, peak_kb = _proc_stat(bench.operator.pid)
            print(
                f"[{size}] all Ready {initial:.0f}s after start; peak RSS {peak_kb / 1024:.0f} MB"
            )

            # Idle starts once the work queue has drained (the watch events caused by
            # the last status writes are still being handled when all are Ready).
            settle = time.monotonic()
            while _scrape(bench.metrics_port)["auth0_rotator_queue_depth"]:
                time.sleep(1)
            time.sleep(5)
            settled = time.monotonic() - settle
            cpu0, _, _ = _proc_stat(bench.operator.pid)
            writes0, calls0 = _api_writes(bench.plane), bench.auth0_calls()
            reconciles0 = _scrape(bench.metrics_port)["auth0_rotator_reconciles_total"]
            profiler = (
                Profiler(bench.operator.pid, PROFILES / f"idle-{size}.txt") if profile else None
            )
            time.sleep(idle)
            cpu1, rss_kb, peak_kb = _proc_stat(bench.operator.pid)
            if profiler is not None:
                profiles["idle"] = profiler.stop()
            writes1, calls1 = _api_writes(bench.plane), bench.auth0_calls()
            reconciles1 = _scrape(bench.metrics_port)["auth0_rotator_reconciles_total"]
            minutes = idle / 60
            idle_figures = {
                "seconds": idle,
                "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / idle, 2),
                "steady_rss_mb": round(rss_kb / 1024, 1),
                "auth0_requests_per_minute": round((calls1 - calls0) / minutes, 2),
                "api_writes_per_minute": round((writes1 - writes0) / minutes, 2),
                "reconciles_per_minute": round((reconciles1 - reconciles0) / minutes, 2),
                "seconds_until_queue_drained_after_all_ready": round(settled, 1),
            }
            print(f"[{size}] idle: {idle_figures}", flush=True)

            rotations0, calls0 = bench.rotations(), bench.auth0_calls()
            os.killpg(bench.operator.pid, signal.SIGTERM)
            bench.operator.wait(timeout=60)
            began = time.monotonic()
            bench.start_operator(Path(tmp) / "operator-2.log")
            profiler = (
                Profiler(bench.operator.pid, PROFILES / f"restart-{size}.txt") if profile else None
            )
            while True:
                time.sleep(1)
                try:
                    seen = _scrape(bench.metrics_port)
                except httpx.HTTPError:
                    continue
                if (
                    seen["auth0_rotator_reconciles_total"] >= size
                    and not seen["auth0_rotator_queue_depth"]
                ):
                    break
            restarted = time.monotonic() - began
            if profiler is not None:
                profiles["restart"] = profiler.stop()
            restart = {
                "seconds_until_every_resource_handled": round(restarted, 1),
                "auth0_calls": bench.auth0_calls() - calls0,
                "rotations_caused": bench.rotations() - rotations0,
            }
            print(f"[{size}] restart: {restart}", flush=True)
            return {
                "resources": size,
                "create_seconds": round(populate, 1),
                "initial_seconds_until_all_ready": round(initial, 1),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "idle": idle_figures,
                "restart": restart,
                **({"profiles": profiles} if profiles else {}),
            }
        finally:
            bench.stop()


def main() -> int:
    """Run the sizes and write the results file."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--idle", type=float, default=300.0, help="idle seconds to measure")
    parser.add_argument("--profile", action="store_true", help="sample each phase with py-spy")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results file")
    args = parser.parse_args()
    results = [measure(size, args.idle, args.profile) for size in args.sizes]
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "goals": {
            "rss_mb_at_10000": "<= 300",
            "idle_cpu_percent": "<= 5",
            "idle_auth0_requests_per_minute": 0,
            "idle_api_writes_per_minute": 0,
            "restart_seconds_at_10000": "<= 120",
            "restart_auth0_calls": 0,
            "restart_rotations": 0,
        },
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
