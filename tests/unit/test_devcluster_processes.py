"""Control-plane processes are stopped as whole process groups, leaving nothing behind."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from auth0_rotator_dev.devcluster import BINARIES, ControlPlane, ControlPlaneError
from auth0_rotator_dev.devcluster.processes import ManagedProcess, kill_recorded


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes.
    return "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]


def _wait_for_file(path: Path) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    proc = ManagedProcess.start(
        "forker", ["sh", "-c", f"sleep 300 & echo $! > {child_pid_file}; wait"], tmp_path
    )
    child = int(_wait_for_file(child_pid_file))
    assert _alive(child)

    proc.stop(timeout=5)

    assert not _alive(proc.process.pid)
    assert not _alive(child)
    assert not proc.pid_path.exists()


def test_kill_recorded_stops_what_a_crashed_run_left(tmp_path: Path) -> None:
    proc = ManagedProcess.start("leftover", ["sleep", "300"], tmp_path)
    # Simulate a crash of the parent: only the pid file remains as a record.
    stopped = kill_recorded(tmp_path, timeout=5)
    proc.process.wait(timeout=5)
    assert stopped == ["leftover"]
    assert not (tmp_path / "pids" / "leftover.pid").exists()


def test_kill_recorded_ignores_a_reused_pid_of_another_process(tmp_path: Path) -> None:
    (tmp_path / "pids").mkdir()
    # Our own pid, which does not run in tmp_path: must not be signalled.
    (tmp_path / "pids" / "stale.pid").write_text(str(os.getpgid(0)))
    assert kill_recorded(tmp_path, timeout=1) == []


def test_missing_binaries_are_named(tmp_path: Path) -> None:
    with pytest.raises(ControlPlaneError, match=r"missing binaries in .*etcd.*kube-apiserver"):
        ControlPlane(tmp_path / "bin", tmp_path / "state").start()


def test_startup_failure_reports_the_component_log_and_stops_everything(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in BINARIES:
        script = bin_dir / name
        script.write_text("#!/bin/sh\nsleep 300\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    (bin_dir / "etcd").write_text("#!/bin/sh\necho 'etcdmain: bad flag --frobnicate' >&2\nexit 3\n")
    state = tmp_path / "state"

    with pytest.raises(ControlPlaneError) as exc:
        ControlPlane(bin_dir, state, startup_timeout=10).start()

    message = str(exc.value)
    assert "etcd exited while waiting for etcd health" in message
    assert "etcdmain: bad flag --frobnicate" in message
    assert list((state / "pids").glob("*.pid")) == []
