"""The processes a benchmark script starts: each in its own session, logged to a file."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

__all__ = ["Processes"]


class Processes:
    """Processes started by one benchmark run; :meth:`stop` ends them all."""

    def __init__(self, logs: Path) -> None:
        """Logs go to ``logs/<name or proc>-<n>.log``."""
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.named: dict[str, subprocess.Popen[bytes]] = {}
        """The latest process started under each name."""

    def spawn(
        self, argv: list[str], env: dict[str, str] | None = None, name: str = ""
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` with the environment plus ``env``."""
        log = (self.logs / f"{name or 'proc'}-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.procs.append(proc)
        if name:
            self.named[name] = proc
        return proc

    def kill(self, name: str, sig: signal.Signals, wait: float = 30) -> None:
        """Send ``sig`` to the process named ``name`` and wait for it to end."""
        proc = self.named[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def stop(self) -> None:
        """Stop them (SIGTERM to each session still running), waiting for each."""
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
