"""The kind suite is skipped with a precise reason exactly when it cannot run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.environment import skip_reason


def _fake_bin(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def test_no_docker_cli_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert skip_reason() == "no Docker engine: the docker CLI is not on PATH (kind needs Docker)"


def test_a_docker_cli_without_an_engine_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_bin(
        tmp_path,
        "docker",
        'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2; exit 1',
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = skip_reason()
    assert reason == (
        "no Docker engine: `docker info` failed: Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock."
    )


def test_docker_without_helm_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_bin(tmp_path, "docker", "echo 27.3.1")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert skip_reason() == "helm is not on PATH (the suite installs the chart with it)"


def test_docker_and_helm_present_means_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_bin(tmp_path, "docker", "echo 27.3.1")
    _fake_bin(tmp_path, "helm", "exit 0")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    assert skip_reason() is None


def test_the_kind_tests_are_marked_and_skipped_here_with_that_reason(
    pytestconfig: pytest.Config,
) -> None:
    """On this machine (no Docker engine) the collected e2e tests carry the skip."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/e2e", "-q", "-rs", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
        check=False,
    )
    reason = skip_reason()
    if reason is None:
        pytest.skip("Docker and helm are available here: the suite runs instead")
    assert out.returncode == 0, out.stdout[-2000:]
    assert "1 skipped" in out.stdout
    assert f"kind e2e: {reason}" in out.stdout
