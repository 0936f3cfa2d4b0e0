"""How the demo talks: numbered steps with timings, fingerprints instead of values, waits."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["DemoError", "Narrator", "fingerprint", "repo_root", "wait_until"]

T = TypeVar("T")


class DemoError(RuntimeError):
    """A step did not happen in time; the message says which and where to look."""


class Narrator:
    """Prints numbered steps and indented details with the time since start."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.step_no = 0

    def step(self, text: str) -> None:
        """A new step."""
        self.step_no += 1
        print(f"\n[{self._elapsed()}] {self.step_no}. {text}", flush=True)

    def detail(self, text: str) -> None:
        """A line under the current step."""
        print(f"[{self._elapsed()}]    {text}", flush=True)

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.start:6.1f}s"


def fingerprint(value: str) -> str:
    """A short SHA-256 fingerprint: shows that a value changed, never the value."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` until truthy; :class:`DemoError` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")


def repo_root() -> Path:
    """The checkout holding ``examples/`` and ``crds/`` (the demo runs from a clone)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "examples").is_dir() and (parent / "crds").is_dir():
            return parent
    raise DemoError("examples/ and crds/ not found above the package: run from a clone")
