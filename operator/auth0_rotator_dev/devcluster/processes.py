"""Child processes of the local control plane, each in its own process group.

Every component is started with ``start_new_session=True`` so that stopping it
kills the whole group (a binary that forks cannot leave orphans), its output
goes to a log file kept in the state directory, and its pid is recorded there
so a later ``down`` (or the next ``up``) can stop what a crashed run left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ManagedProcess", "kill_recorded", "log_tail"]


def log_tail(path: Path, lines: int = 25) -> str:
    """Return the last ``lines`` lines of a log file, or a note if it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class ManagedProcess:
    """One started component: its name, process, log file and pid file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    pid_path: Path

    @classmethod
    def start(
        cls, name: str, argv: Sequence[str], state_dir: Path, env: dict[str, str] | None = None
    ) -> ManagedProcess:
        """Start ``argv`` in a new session, logging to ``<state_dir>/logs/<name>.log``."""
        logs = state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {})},
                cwd=state_dir,
            )
        pid_path = state_dir / "pids" / f"{name}.pid"
        pid_path.parent.mkdir(parents=True, exist_ok=True)
        pid_path.write_text(str(process.pid))
        return cls(name, process, log_path, pid_path)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process group, escalating to SIGKILL after ``timeout``."""
        _kill_group(self.process.pid, timeout, waiter=self.process)
        self.pid_path.unlink(missing_ok=True)


def _kill_group(pid: int, timeout: float, waiter: subprocess.Popen[bytes] | None = None) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if waiter is not None:
                if waiter.poll() is not None and not _group_exists(pid):
                    return
            elif not _group_exists(pid):
                return
            time.sleep(0.05)
    if waiter is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            waiter.wait(timeout=1)


def _group_exists(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies awaiting reaping do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command name: state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _cwd_of(pid: int) -> Path | None:
    try:
        return Path(f"/proc/{pid}/cwd").readlink().resolve()
    except OSError:
        return None


def kill_recorded(state_dir: Path, timeout: float = 10.0) -> list[str]:
    """Stop every process group whose pid file is in ``state_dir``; return their names."""
    stopped: list[str] = []
    pid_dir = state_dir / "pids"
    if not pid_dir.is_dir():
        return stopped
    for pid_path in sorted(pid_dir.glob("*.pid")):
        try:
            pid = int(pid_path.read_text().strip())
        except (OSError, ValueError):
            pid_path.unlink(missing_ok=True)
            continue
        # A recorded pid may have been reused since: only stop a process that
        # still runs in this state directory (all components are started there).
        if _group_exists(pid) and _cwd_of(pid) == state_dir.resolve():
            _kill_group(pid, timeout)
            stopped.append(pid_path.stem)
        pid_path.unlink(missing_ok=True)
    return stopped
