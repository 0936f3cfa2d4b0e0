"""The ``auth0-rotator`` subcommands of a development install.

:mod:`auth0_rotator.cli` adds these when this package can be imported, so the
demo, the tests and the docs keep using ``auth0-rotator fake-auth0`` while the
production image has no such command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = ("fake-auth0",)
"""Subcommand names this module handles."""


def add_parsers(sub: Any) -> None:
    """Add the development subcommands to the ``auth0-rotator`` parser's subparsers."""
    fake = sub.add_parser("fake-auth0", help="serve a local fake Auth0 tenant (development)")
    fake.add_argument(
        "--listen", default="127.0.0.1:8443", metavar="HOST:PORT", help="default: %(default)s"
    )
    fake.add_argument(
        "--tls-dir",
        type=Path,
        help="serve HTTPS; a CA (ca.crt) and server certificate are created here",
    )
    fake.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="extra DNS name for the certificate (repeatable)",
    )
    fake.add_argument("--domain", help="tenant domain clients use (default HOST:PORT)")
    fake.add_argument(
        "--seed", type=Path, help='JSON file {"clients": [...]} with clients to create'
    )
    fake.add_argument("--rate-limit", type=float, default=2.0, help="requests/s (default 2)")
    fake.add_argument("--burst", type=int, default=10, help="default: %(default)s")
    fake.add_argument(
        "--propagation-delay",
        type=float,
        default=0.0,
        help="seconds until a new secret is accepted",
    )
    fake.add_argument("--token-lifetime", type=int, default=86400, help="seconds")


def run(args: argparse.Namespace) -> int:
    """Run the development subcommand ``args.command``; return the exit code."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_fake(args))
    return 0


async def _serve_fake(args: argparse.Namespace) -> None:
    from auth0_rotator_dev.fake_auth0 import FakeAuth0Server, seed_clients

    host, _, port = args.listen.rpartition(":")
    server = FakeAuth0Server(
        host or "127.0.0.1",
        int(port),
        tls_dir=args.tls_dir,
        extra_hosts=tuple(args.hostname),
        domain=args.domain,
    )
    await server.start()
    assert server.tenant is not None  # noqa: S101 - set by start()
    server.tenant.apply_settings(
        {
            "rate_limit": {"requests_per_second": args.rate_limit, "burst": args.burst},
            "propagation_delay": args.propagation_delay,
            "token_lifetime": args.token_lifetime,
        }
    )
    if args.seed:
        seed_clients(server.tenant, json.loads(args.seed.read_text())["clients"])
    ca = f", trust {server.ca_file}" if server.ca_file else ""
    print(f"fake Auth0 tenant {server.domain} serving at {server.url}{ca}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
