"""Benchmark: secret changes through the Auth0 client against a rate-limited fake tenant.

Drives N ``set_client_secret`` calls (PATCH) concurrently through one
:class:`Auth0Client` against the fake tenant over HTTPS on 127.0.0.1, limited
to R requests/s with burst B, and reports:

- achieved rate / limit: sustained rate after the burst, ``(N - B) / elapsed``
  divided by R (goal >= 0.9);
- 429 share: 429 answers / all Management API answers (goal <= 2 %);
- token requests (goal 1); failures (goal 0).

Usage: python benchmarks/auth0_client.py [--changes 300] [--rate 10] [--burst 10]
Writes benchmarks/results/auth0_client.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auth0_rotator.auth0 import Auth0Client, Auth0Error, TenantConnection
from auth0_rotator.secretvalue import SecretValue, generate_client_secret
from auth0_rotator_dev.fake_auth0 import FakeAuth0Server, seed_clients

RESULTS = Path(__file__).resolve().parent / "results" / "auth0_client.json"


async def run(changes: int, rate: float, burst: int, clients: int) -> dict[str, Any]:
    """Run the benchmark once and return its figures."""
    with tempfile.TemporaryDirectory() as tls:
        async with FakeAuth0Server(tls_dir=Path(tls)) as fake:
            tenant = fake.tenant
            assert tenant is not None
            audience = f"https://{fake.domain}/api/v2/"
            m2m_secret = generate_client_secret()
            seed_clients(
                tenant,
                [
                    {
                        "client_id": "m2m",
                        "client_secret": m2m_secret.reveal(),
                        "grants": {audience: ["read:client_keys", "update:client_keys"]},
                    },
                    *({"client_id": f"app-{i}"} for i in range(clients)),
                ],
            )
            tenant.apply_settings({"rate_limit": {"requests_per_second": rate, "burst": burst}})
            connection = TenantConnection(
                domain=fake.domain,
                client_id="m2m",
                client_secret=SecretValue(m2m_secret.reveal()),
                requests_per_second=rate,
                burst=burst,
                ca_file=str(fake.ca_file),
            )
            failures = 0
            async with Auth0Client(connection) as auth0:

                async def change(i: int) -> None:
                    nonlocal failures
                    try:
                        await auth0.set_client_secret(
                            f"app-{i % clients}", generate_client_secret()
                        )
                    except Auth0Error:
                        failures += 1

                started = time.monotonic()
                await asyncio.gather(*(change(i) for i in range(changes)))
                elapsed = time.monotonic() - started

            management = [c for c in tenant.calls if c.endpoint != "token"]
            too_many = sum(1 for c in management if c.status == 429)
            tokens = sum(1 for c in tenant.calls if c.endpoint == "token")
            changed = sum(c.secret_changes for c in tenant.clients.values())

    sustained = (changes - burst) / elapsed if elapsed > 0 else float("inf")
    return {
        "scenario": {"changes": changes, "rate_limit": rate, "burst": burst, "clients": clients},
        "elapsed_seconds": round(elapsed, 2),
        "ideal_seconds": round((changes - burst) / rate, 2),
        "achieved_rate_over_limit": round(sustained / rate, 3),
        "management_requests": len(management),
        "share_429": round(too_many / len(management), 4) if management else 0.0,
        "responses_429": too_many,
        "token_requests": tokens,
        "failures": failures,
        "secret_changes_seen_by_tenant": changed,
        "goals": {
            "achieved_rate_over_limit": ">= 0.9",
            "share_429": "<= 0.02",
            "token_requests": "== 1",
            "failures": "== 0",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    """Parse options, run, print and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    figures = asyncio.run(run(args.changes, args.rate, args.burst, args.clients))
    text = json.dumps(figures, indent=2)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
