"""Shared fixtures: the local control plane, started once per test session.

Integration tests (``tests/integration``) get a real kube-apiserver, etcd,
controller-manager, scheduler and kwok nodes on 127.0.0.1. The binaries come
from ``$AUTH0_ROTATOR_KUBE_BIN`` or, if unset, from ``hack/kube-bins.sh``
(which builds them on first use); promtool, for the alert rule tests, from
``$AUTH0_ROTATOR_PROMTOOL`` or ``hack/promtool.sh``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from auth0_rotator_dev.devcluster import KUBE_BIN_ENV, ControlPlane
from tests.reliability import REPORT

REPO = Path(__file__).resolve().parent.parent


FIGURES = pytest.StashKey[dict[str, float | str]]()
ATTACK = pytest.StashKey[dict[str, float | str]]()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, float | str]:
    """Figures of this reliability scenario run, for RELIABILITY.md (see tests/reliability.py)."""
    found: dict[str, float | str] = {}
    request.node.stash[FIGURES] = found
    return found


@pytest.fixture
def attack(request: pytest.FixtureRequest) -> dict[str, float | str]:
    """What this security test's attack led to (outcome, reason, auth0_writes)."""
    seen: dict[str, float | str] = {}
    request.node.stash[ATTACK] = seen
    return seen


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Record each run of a ``reliability`` scenario with its outcome and figures."""
    report = yield
    marker = item.get_closest_marker("reliability")
    # One entry per run: the call's outcome, or a setup that failed (no call follows).
    counted = report.when == "call" or (report.when == "setup" and report.failed)
    if marker is not None and counted:
        REPORT.add(str(marker.args[0]), report.passed, item.stash.get(FIGURES, {}))
    security = item.get_closest_marker("security")
    if security is not None and counted:
        REPORT.add_attack(str(security.args[0]), report.passed, item.stash.get(ATTACK, {}))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write RELIABILITY.md when reliability scenarios ran."""
    args = " ".join(str(a) for a in session.config.invocation_params.args)
    REPORT.write(REPO / "RELIABILITY.md", f"pytest {args}".strip())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration as ``integration``."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


def _kube_bin_dir() -> Path:
    value = os.environ.get(KUBE_BIN_ENV)
    if value:
        return Path(value)
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "kube-bins.sh")],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


PROMTOOL_ENV = "AUTH0_ROTATOR_PROMTOOL"


@pytest.fixture(scope="session")
def promtool() -> Path:
    """Promtool from ``$AUTH0_ROTATOR_PROMTOOL`` or ``hack/promtool.sh`` (built on first use)."""
    value = os.environ.get(PROMTOOL_ENV)
    if not value:
        out = subprocess.run(
            ["bash", str(REPO / "hack" / "promtool.sh")], check=True, capture_output=True, text=True
        )
        value = out.stdout.strip().splitlines()[-1]
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"{path} is missing; run `hack/promtool.sh` to build it")
    return path


def _processes_in(directory: Path) -> list[int]:
    """Pids whose working directory is inside ``directory`` (our components run there)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = (proc / "cwd").readlink()
        except OSError:
            continue
        if cwd == directory or directory in cwd.parents:
            found.append(int(proc.name))
    return found


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running local control plane; stopped, and checked for leftovers, at session end."""
    state_dir = tmp_path_factory.mktemp("control-plane").resolve()
    plane = ControlPlane(_kube_bin_dir(), state_dir, nodes=2)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
        leftovers = _processes_in(state_dir)
        assert not leftovers, f"control plane processes survived teardown: {leftovers}"
