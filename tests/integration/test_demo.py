"""``make demo`` runs non-interactively: the rotation is narrated end to end, then all stops.

The demo starts its own control plane, fake tenant and operator (on a free
port, since the suite's fake tenant holds the examples' port), so it is run
as a subprocess exactly as ``make demo`` runs it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from auth0_rotator_dev.devcluster import KUBE_BIN_ENV
from auth0_rotator_dev.devcluster.cluster import free_port
from tests.conftest import _kube_bin_dir, _processes_in

Milestone = str | tuple[str, ...]
MILESTONES: list[Milestone] = [
    "Starting a local Kubernetes control plane",
    "Starting the fake Auth0 tenant",
    "--leader-elect",
    "$ kubectl apply -n demo -f",
    "Ready=True Fetched",
    "Deployment orders-api: 2 pods Ready",
    "$ kubectl annotate -n demo a0cs orders-api auth0rotator.dev/rotate=",
    "journal phase Staged persisted",  # the claim: the value is staged just before it
    "journal phase Verified persisted",
    "Ready=True Rotated",
    "Secret orders-api-auth0 changed: sha256:",
    "new secret: accepted",
    "old secret: refused (HTTP 401",
    "2 new pods Ready with that revision",
    "RolloutComplete=True",
]
ANNOUNCE_MILESTONES: list[Milestone] = [
    # --announce: an announced rotation of the same secret follows.
    "Announced rotation: the next secret reaches the pods before Auth0 changes",
    # The operator publishes the next secret, then persists the phase that says so; the
    # demo reads the Secret and the status separately, so it may print them either way.
    ("next_client_secret sha256:", "journal phase Announced persisted"),
    "Ready=True Rotated",
    "0 refused with the fallback rule",
    "Auth0 changed",
]
KEY_PAIR_MILESTONES: list[Milestone] = [
    # --key-pair: a zero-downtime KeyPair rotation follows.
    "$ kubectl apply -n demo -f",
    "creation registered a first key",
    "$ kubectl annotate -n demo a0cs payments-api auth0rotator.dev/rotate=",
    "journal phase Registered persisted",
    "Auth0: 2 key(s) enabled",
    "old key: accepted",
    "Auth0: 1 key(s) enabled",
    "new key: accepted (HTTP 403); old key: refused (HTTP 401, invalid_client)",
    "token requests, 0 refused",
    "Ready=True Rotated: rotated the key of client payments-api-client",
    "old key deleted",
    "RolloutComplete",
]
END = [
    "Done: rotated in Auth0, written to the Secret, rolled out",
    "operator, fake Auth0 tenant and control plane stopped",
]
# A secret the fake tenant issues is 64 URL-safe characters; nothing that long is printed.
SECRET_LIKE = re.compile(r"(?<![A-Za-z0-9_\-/.])[A-Za-z0-9_\-]{40,}")


def _demo(state: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, KUBE_BIN_ENV: str(_kube_bin_dir())}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "auth0_rotator_dev.devcluster.demo",
            "--auth0-port",
            str(free_port()),
            "--state-dir",
            str(state),
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _assert_story(out: str, *, more: tuple[list[Milestone], ...] = ()) -> None:
    """Every milestone in order; a tuple's members in any order, all after the one before."""
    position = 0
    for milestone in [*MILESTONES, *(m for story in more for m in story), *END]:
        found = [
            (out.find(m, position), m)
            for m in (milestone if isinstance(milestone, tuple) else (milestone,))
        ]
        for at, text in found:
            assert at >= 0, f"missing or out of order: {text!r}\n{out}"
        position = max(at for at, _ in found)
    changed = re.search(r"changed: (sha256:\w+) -> (sha256:\w+)", out)
    assert changed and changed.group(1) != changed.group(2)
    assert not SECRET_LIKE.findall(out), "the demo printed something secret-like"


def test_demo_runs_a_rotation_end_to_end_and_stops_everything(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "--announce", "--key-pair")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    _assert_story(out, more=(ANNOUNCE_MILESTONES, KEY_PAIR_MILESTONES))
    assert _processes_in(tmp_path) == [], "the demo left processes running"


def test_demo_keep_stays_up_with_a_hint_then_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "--keep")
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "everything stays up until Ctrl-C" in line:
            break
    text = "".join(lines)
    assert "everything stays up until Ctrl-C" in text, text
    kubeconfig = re.search(r"export KUBECONFIG=(\S+)", text)
    assert kubeconfig, text
    listed = subprocess.run(
        [
            str(_kube_bin_dir() / "kubectl"),
            "--kubeconfig",
            kubeconfig.group(1),
            "get",
            "a0cs",
            "-n",
            "demo",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert listed.returncode == 0 and "orders-api" in listed.stdout, listed.stderr
    assert _processes_in(tmp_path), "still up while waiting"

    os.killpg(proc.pid, signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    _assert_story(text + rest)
    assert _processes_in(tmp_path) == []
