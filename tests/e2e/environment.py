"""Whether the kind end-to-end suite can run here, and if not, exactly why.

The suite needs a Docker engine (kind runs its nodes as containers and the
operator image is built with ``docker build``) and helm. kind and its kubectl
come from pytest-kind, which downloads them unless ``--kind-bin`` /
``--kind-kubectl-bin`` name local copies.
"""

from __future__ import annotations

import shutil
import subprocess

__all__ = ["skip_reason"]


def skip_reason(helm: str | None = None, timeout: float = 20.0) -> str | None:
    """``None`` when Docker answers and helm exists; otherwise a precise reason to skip."""
    docker = shutil.which("docker")
    if docker is None:
        return "no Docker engine: the docker CLI is not on PATH (kind needs Docker)"
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Docker engine: `docker info` did not answer ({type(exc).__name__})"
    if info.returncode != 0 or not info.stdout.strip():
        detail = (info.stderr or info.stdout).strip().splitlines()
        return f"no Docker engine: `docker info` failed: {detail[-1] if detail else 'no output'}"
    if (helm or shutil.which("helm")) is None:
        return "helm is not on PATH (the suite installs the chart with it)"
    return None
