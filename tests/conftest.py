"""Shared fixtures: the local control plane, started once per test session.

Integration tests (``tests/integration``) get a real kube-apiserver, etcd,
controller-manager, scheduler and kwok nodes on 127.0.0.1. The binaries come
from ``$AUTH0_ROTATOR_KUBE_BIN`` or, if unset, from ``hack/kube-bins.sh``
(which builds them on first use).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from auth0_rotator.devcluster import KUBE_BIN_ENV, ControlPlane

REPO = Path(__file__).resolve().parent.parent


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
