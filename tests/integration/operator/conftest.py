"""Fixtures for operator tests: CRDs installed, the fake tenant, the operator itself.

The fake Auth0 tenant runs as its own process (``auth0-rotator fake-auth0``)
on the port the examples name, seeded from ``examples/fake-auth0-seed.json``.
The operator runs in-process in a thread (watching ``t-*`` namespaces) with a
clock the tests can move forward; crash tests start real operator processes
watching ``c-*`` namespaces instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from kubernetes import client, config
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config

from auth0_rotator.endpoints import Endpoint
from auth0_rotator.handlers import OperatorContext
from auth0_rotator.logs import ResourceContext
from auth0_rotator.runtime import OperatorOptions, run_operator
from auth0_rotator.schedule import SystemClock
from auth0_rotator.settings import EngineSettings
from auth0_rotator_dev.devcluster import ControlPlane
from auth0_rotator_dev.devcluster.cluster import free_port
from tests.integration.operator.harness import (
    DOMAIN,
    EXAMPLES,
    M2M_ID,
    M2M_SECRET,
    REPO,
    FakeTenant,
    Kube,
    OperatorProcess,
    SuiteRecorder,
    make_deployment,
    make_tenant,
    wait_for,
)


@pytest.fixture(scope="session")
def fake_tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeTenant]:
    """``auth0-rotator fake-auth0`` on 127.0.0.1:18443, seeded like the examples."""
    tls = tmp_path_factory.mktemp("fake-tls")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "auth0_rotator.cli",
            "fake-auth0",
            "--listen",
            DOMAIN,
            "--tls-dir",
            str(tls),
            "--seed",
            str(EXAMPLES / "fake-auth0-seed.json"),
            "--rate-limit",
            "50",
            "--burst",
            "50",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "serving at" in line, f"fake tenant did not start: {line}{proc.stdout.read()}"
    tenant = FakeTenant(f"https://{DOMAIN}", tls / "ca.crt")
    try:
        yield tenant
    finally:
        tenant.http.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane) -> None:
    """The project's CRDs, installed and established."""
    control_plane.kubectl_run("apply", "-f", str(REPO / "crds"))
    control_plane.kubectl_run(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/auth0clientsecrets.auth0rotator.dev",
        "crd/auth0tenants.auth0rotator.dev",
        "crd/clusterauth0tenants.auth0rotator.dev",
    )


class LogCapture(logging.Handler):
    """Keeps every log line of the in-process operator for the leak scan."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []
        # The operator's own handler does the same: resource and rotation of the task.
        self.addFilter(ResourceContext())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@dataclass
class RunningOperator:
    """The in-process operator: its context (controller, engine), clock and logs."""

    context: OperatorContext
    clock: SystemClock
    logs: LogCapture
    recorder: SuiteRecorder
    metrics_url: str
    health_url: str

    def advance(self, delta: timedelta) -> None:
        """Move the operator's clock forward and let the scheduler notice."""
        self.clock.offset += delta
        if self.context.controller is not None:
            self.context.controller.poke()


AUTH0_DEADLINE = 5.0
"""Seconds for one Auth0 request in the in-process operator (30 in production)."""

TEST_ENGINE = {
    "verify_timeout": 10.0,
    "verify_interval": 0.2,
    "retry_after": timedelta(seconds=2),
    "recheck_after": timedelta(seconds=5),
    # Rollouts are followed by the workloads' watch events; a poll this slow never
    # fires within a test, so every rollout test proves the events alone suffice.
    "rollout_poll": timedelta(minutes=10),
    "restart_window": timedelta(seconds=3),
    "rollout_deadline": timedelta(seconds=20),
}


@pytest.fixture(scope="session")
def operator(
    control_plane: ControlPlane, crds: None, fake_tenant: FakeTenant
) -> Iterator[RunningOperator]:
    """The operator, in-process, watching ``t-*`` namespaces."""
    os.environ["KUBECONFIG"] = str(control_plane.kubeconfig)
    clock = SystemClock()
    context = OperatorContext()
    metrics, health = Endpoint("127.0.0.1", free_port(), "/metrics"), free_port()
    options = OperatorOptions(
        namespaces=("t-*",),
        engine=EngineSettings(identity="test-operator", clock=clock, **TEST_ENGINE),
        extra_ca_file=str(fake_tenant.ca_file),
        allowed_domains=("127.0.0.1:*",),
        auth0_deadline=AUTH0_DEADLINE,
        metrics=metrics,
        liveness=Endpoint("127.0.0.1", health, "/healthz"),
    )
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run() -> None:

        try:
            asyncio.run(run_operator(options, stop_flag=stop, ready_flag=ready, context=context))
        except BaseException as exc:  # surfaced by the fixture
            errors.append(exc)

    recorder = SuiteRecorder(
        config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    )
    capture = LogCapture()
    capture.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(exc_info)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    thread = threading.Thread(target=run, name="operator", daemon=True)
    thread.start()
    assert ready.wait(60), f"operator did not start: {errors}"
    try:
        yield RunningOperator(
            context,
            clock,
            capture,
            recorder,
            f"http://127.0.0.1:{metrics.port}/metrics",
            f"http://127.0.0.1:{health}/healthz",
        )
    finally:
        stop.set()
        thread.join(30)
        recorder.stop()
        root.removeHandler(capture)
        root.setLevel(previous_level)


@pytest.fixture
def tenant_ns(api: client.ApiClient, operator: RunningOperator) -> Iterator[str]:
    """A ``t-`` namespace with the example tenant (credentials + Auth0Tenant "default")."""
    yield from _namespace_with_tenant(api, "t")


def _namespace_with_tenant(api: client.ApiClient, prefix: str) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    make_tenant(api, name, "default", M2M_ID, M2M_SECRET)
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture
def web(api: client.ApiClient, tenant_ns: str) -> str:
    """Deployment ``web`` in ``tenant_ns``: 2 pods (kwok runs them), both Ready."""
    make_deployment(api, tenant_ns, "web", replicas=2)
    apps = client.AppsV1Api(api)
    wait_for(
        lambda: (apps.read_namespaced_deployment("web", tenant_ns).status.ready_replicas or 0) == 2,
        60,
        "web ready",
    )
    return "web"


@pytest.fixture
def stuck(api: client.ApiClient, tenant_ns: str) -> str:
    """Deployment ``stuck`` in ``tenant_ns`` whose rollouts never finish.

    No node matches its pods' selector: restarted pods never run, and the old
    pod (created before the selector) stays.
    """
    make_deployment(api, tenant_ns, "stuck")
    client.AppsV1Api(api).patch_namespaced_deployment(
        "stuck", tenant_ns, {"spec": {"template": {"spec": {"nodeSelector": {"none": "x"}}}}}
    )
    return "stuck"


@pytest.fixture
def app_id(fake_tenant: FakeTenant) -> str:
    """A fresh Auth0 application in the fake, to rotate."""
    client_id = f"app-{uuid.uuid4().hex[:10]}"
    fake_tenant.create_client(client_id)
    return client_id


@pytest.fixture
def kube(api: client.ApiClient) -> Kube:
    """Test-side reads and writes of the resources."""
    return Kube(api)


@pytest.fixture
def crash_ns(api: client.ApiClient, crds: None, fake_tenant: FakeTenant) -> Iterator[str]:
    """A ``c-`` namespace (outside the in-process operator's scope) with the example tenant."""
    yield from _namespace_with_tenant(api, "c")


@pytest.fixture
async def aio_api(control_plane: ControlPlane) -> AsyncIterator[aio_client.ApiClient]:
    """An asyncio API client (the operator's kind) for in-process tests."""
    configuration = aio_client.Configuration()
    await aio_config.load_kube_config(
        config_file=str(control_plane.kubeconfig), client_configuration=configuration
    )
    api = aio_client.ApiClient(configuration)
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
def processes() -> Iterator[list[OperatorProcess]]:
    """Operator processes started by a test; all stopped afterwards."""
    started: list[OperatorProcess] = []
    yield started
    for proc in started:
        proc.stop()
