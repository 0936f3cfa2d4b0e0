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
        """Logs go to ``logs/proc-<n>.log``."""
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``argv`` with the environment plus ``env``."""
        log = (self.logs / f"proc-{len(self.procs)}.log").open("wb")
        self.procs.append(
            subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        )

    def stop(self) -> None:
        """Stop them (SIGTERM to each session), waiting for each."""
        for proc in self.procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
