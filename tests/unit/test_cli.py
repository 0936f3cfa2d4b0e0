"""The console script parses its subcommands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from auth0_rotator import __version__
from auth0_rotator.cli import build_parser, main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_run_defaults_to_all_namespaces_and_human_logs() -> None:
    args = build_parser().parse_args(["run"])
    assert args.namespace == []
    assert args.log_format == "human"


def test_run_rejects_namespaces_together_with_all_namespaces() -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["run", "-A", "-n", "team-a"])
    assert exc.value.code == 2


def test_console_script_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "auth0_rotator.cli", "version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == __version__


def test_run_exposes_restart_window_and_rollout_deadline() -> None:
    args = build_parser().parse_args(["run", "--restart-window", "2", "--rollout-deadline", "90"])
    assert (args.restart_window, args.rollout_deadline) == (2.0, 90.0)
