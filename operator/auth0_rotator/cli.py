"""The ``auth0-rotator`` command line.

Subcommands:

``run``
    start the operator (kopf runtime) against the cluster of the current
    kubeconfig or in-cluster service account.
``fake-auth0``
    serve a local fake Auth0 tenant (tests, demo); only in a development
    install, where :mod:`auth0_rotator_dev` exists (the image does not ship it).
``version``
    print the version.

The demo, the container image and the tests all start things through here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from auth0_rotator import __version__

try:  # development tools: present in a source checkout, never in the image
    from auth0_rotator_dev import commands as _dev_commands
except ImportError:  # pragma: no cover - the production image
    _dev_commands = None  # type: ignore[assignment]

__all__ = ["build_parser", "main"]

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="auth0-rotator",
        description="Rotate Auth0 client secrets into Kubernetes Secrets.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="watch every namespace (the default when no --namespace is given)",
    )
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NAME",
        help="watch this namespace; repeat for several",
    )
    run.add_argument(
        "--log-format",
        choices=["human", "json"],
        default="human",
        help="log line format (default: human)",
    )
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.add_argument(
        "--identity",
        default=os.environ.get("POD_NAME") or socket.gethostname(),
        help="who holds rotation journals and the Lease; a restart with the same identity "
        "resumes its journals at once (default: $POD_NAME or the host name)",
    )
    run.add_argument(
        "--verify-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for Auth0 to accept a new secret (default: %(default)s)",
    )
    run.add_argument("--workers", type=int, default=4, help="concurrent reconciles")
    run.add_argument(
        "--restart-window",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="wait this long after a rotation so rotations for one workload restart it once "
        "(default: %(default)s)",
    )
    run.add_argument(
        "--rollout-deadline",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="report RolloutStalled after this long (default: %(default)s)",
    )
    run.add_argument(
        "--extra-ca-file",
        metavar="PEM",
        help="CA bundle to trust for every tenant besides the system CAs (local fake tenants)",
    )
    run.add_argument(
        "--allowed-domain",
        action="append",
        default=None,
        metavar="PATTERN",
        help="tenant domain credentials may be sent to; repeat for several (replaces the "
        "default *.auth0.com). host[:port], *.suffix or host:*; IP addresses, ports and "
        "cluster-local names need an exact entry",
    )
    run.add_argument(
        "--auth0-deadline",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="time for one whole Auth0 request, answer included (default: %(default)s)",
    )
    run.add_argument(
        "--reconcile-deadline",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="time for one reconcile before it is cancelled and retried; liveness fails when "
        "one outlives it (default: %(default)s)",
    )
    run.add_argument(
        "--liveness",
        default="http://127.0.0.1:8080/healthz",
        metavar="URL",
        help="liveness endpoint to serve, standby or leader; empty: none (default: %(default)s)",
    )
    run.add_argument(
        "--metrics",
        default="127.0.0.1:9090",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics; empty: none "
        "(default: %(default)s)",
    )
    election = run.add_argument_group(
        "leader election",
        "With --leader-elect only the holder of a coordination.k8s.io Lease acts; other "
        "replicas wait as hot standbys. Run more than one replica only with it.",
    )
    election.add_argument(
        "--leader-elect", action="store_true", help="act only while holding the Lease"
    )
    election.add_argument("--lease-name", default="auth0-rotator", help="default: %(default)s")
    election.add_argument(
        "--lease-namespace",
        default=None,
        help="default: $POD_NAMESPACE, the in-cluster namespace, or 'default'",
    )
    election.add_argument(
        "--lease-duration",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="a standby takes an unrenewed Lease after this long (default: %(default)s)",
    )
    election.add_argument(
        "--renew-deadline",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="the leader stops acting when it could not renew for this long (default: %(default)s)",
    )
    election.add_argument(
        "--retry-period",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often the Lease is renewed or tried (default: %(default)s)",
    )

    if _dev_commands is not None:
        _dev_commands.add_parsers(sub)
    sub.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``auth0-rotator`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "run":
        return _run(args)
    if _dev_commands is not None and args.command in _dev_commands.COMMANDS:
        return _dev_commands.run(args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse prevents this


def _lease_namespace(given: str | None) -> str:
    if given:
        return given
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def _run(args: argparse.Namespace) -> int:
    from auth0_rotator.access import DEFAULT_ALLOWED_DOMAINS, DomainAllowList
    from auth0_rotator.endpoints import parse_listen, parse_url
    from auth0_rotator.leader import LeaseConfig
    from auth0_rotator.runtime import LeadershipLost, OperatorOptions, run_operator
    from auth0_rotator.settings import EngineSettings

    log = logging.getLogger(__name__)
    try:
        lease = (
            LeaseConfig(
                name=args.lease_name,
                namespace=_lease_namespace(args.lease_namespace),
                identity=args.identity,
                lease_duration=args.lease_duration,
                renew_deadline=args.renew_deadline,
                retry_period=args.retry_period,
            )
            if args.leader_elect
            else None
        )
        liveness = parse_url(args.liveness) if args.liveness else None
        metrics = parse_listen(args.metrics) if args.metrics else None
        allowed = DomainAllowList.parse(args.allowed_domain or DEFAULT_ALLOWED_DOMAINS)
    except ValueError as exc:
        print(f"auth0-rotator run: error: {exc}", file=sys.stderr)
        return 2
    options = OperatorOptions(
        namespaces=tuple(args.namespace),
        log_format=args.log_format,
        verbose=args.verbose,
        liveness=liveness,
        metrics=metrics,
        leader_election=lease,
        engine=EngineSettings(
            identity=args.identity,
            verify_timeout=args.verify_timeout,
            restart_window=timedelta(seconds=args.restart_window),
            rollout_deadline=timedelta(seconds=args.rollout_deadline),
            reconcile_deadline=args.reconcile_deadline,
        ),
        workers=args.workers,
        extra_ca_file=args.extra_ca_file,
        allowed_domains=allowed.patterns,
        auth0_deadline=args.auth0_deadline,
    )
    try:
        asyncio.run(run_operator(options))
    except KeyboardInterrupt:
        log.info("interrupted")
    except LeadershipLost as exc:
        log.error("%s; exiting so the pod restarts as a standby", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
