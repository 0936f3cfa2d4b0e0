"""The local Kubernetes stand-in used by the integration tests and the demo.

See :mod:`auth0_rotator_dev.devcluster.cluster` for what runs and how, and
``python -m auth0_rotator_dev.devcluster --help`` for the shell commands.
"""

import os
import tempfile
from pathlib import Path

from auth0_rotator_dev.devcluster.cluster import BINARIES, ControlPlane, ControlPlaneError

__all__ = [
    "BINARIES",
    "KUBE_BIN_ENV",
    "ControlPlane",
    "ControlPlaneError",
    "default_state_dir",
    "kube_bin_dir",
]
KUBE_BIN_ENV = "AUTH0_ROTATOR_KUBE_BIN"
"""Environment variable naming the directory built by ``hack/kube-bins.sh``."""


def kube_bin_dir() -> Path:
    """Directory of the built Kubernetes binaries, from ``$AUTH0_ROTATOR_KUBE_BIN``."""
    value = os.environ.get(KUBE_BIN_ENV)
    if not value:
        raise ControlPlaneError(
            f"${KUBE_BIN_ENV} is not set; run `export {KUBE_BIN_ENV}=$(hack/kube-bins.sh)` "
            "(it builds the binaries on first use)"
        )
    return Path(value)


def default_state_dir() -> Path:
    """State directory used by the shell commands (one shared local cluster)."""
    return Path(tempfile.gettempdir()) / f"auth0-rotator-devcluster-{os.getuid()}"
