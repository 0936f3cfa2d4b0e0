"""Fixtures for the Helm chart tests: the helm binary built by ``hack/kube-bins.sh``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import _kube_bin_dir


@pytest.fixture(scope="session")
def helm() -> Path:
    """Path of the pinned helm v3 binary (``$AUTH0_ROTATOR_KUBE_BIN`` or a kube-bins build)."""
    path = _kube_bin_dir() / "helm"
    if not path.is_file():
        pytest.fail(f"{path} is missing; run `hack/kube-bins.sh` to build it")
    return path
