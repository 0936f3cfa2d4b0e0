"""The console script parses its subcommands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from auth0_rotator import __version__
from auth0_rotator.cli import _lease_namespace, build_parser, main


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


def test_run_leader_election_flags_build_a_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "rotator-system")
    args = build_parser().parse_args(["run", "--leader-elect", "--identity", "pod-a"])
    assert args.leader_elect and args.identity == "pod-a"
    assert _lease_namespace(args.lease_namespace) == "rotator-system"
    assert _lease_namespace("given") == "given"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--leader-elect", "--lease-duration", "5", "--renew-deadline", "10"], "lease duration"),
        (["--leader-elect", "--renew-deadline", "2", "--retry-period", "2"], "renew deadline"),
        (["--liveness", "127.0.0.1:8080"], "http://HOST:PORT/PATH"),
        (["--metrics", "9090"], "HOST:PORT"),
    ],
)
def test_run_refuses_bad_endpoint_and_lease_settings(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("auth0-rotator run: error:")
