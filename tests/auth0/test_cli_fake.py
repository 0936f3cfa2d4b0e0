"""``auth0-rotator fake-auth0`` serves a seeded tenant over HTTPS as its own process."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from auth0_rotator_dev.devcluster.cluster import free_port


def test_fake_auth0_command_serves_seeded_clients_over_https(tmp_path: Path) -> None:
    port = free_port()
    seed = tmp_path / "seed.json"
    audience = f"https://127.0.0.1:{port}/api/v2/"
    seed.write_text(
        json.dumps(
            {
                "clients": [
                    {
                        "client_id": "m2m",
                        "client_secret": "m" * 48,
                        "grants": {audience: ["read:client_keys"]},
                    }
                ]
            }
        )
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "auth0_rotator.cli",
            "fake-auth0",
            "--listen",
            f"127.0.0.1:{port}",
            "--tls-dir",
            str(tmp_path / "tls"),
            "--seed",
            str(seed),
            "--rate-limit",
            "5",
            "--burst",
            "7",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"serving at https://127.0.0.1:{port}" in line
        ctx = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.crt"))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx) as http:
            token = http.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "m2m",
                    "client_secret": "m" * 48,
                    "audience": audience,
                },
            )
            assert token.status_code == 200
            settings = http.get("/_fake/settings").json()
            assert settings["rate_limit"] == {"requests_per_second": 5.0, "burst": 7}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
