"""The ``auth0-rotator`` command line.

Subcommands:

``run``
    start the operator (kopf runtime) against the cluster of the current
    kubeconfig or in-cluster service account.
``version``
    print the version.

Later subcommands (the fake Auth0 tenant) register here too, so the demo,
the container image and the tests all start things the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from auth0_rotator import __version__

__all__ = ["build_parser", "main"]


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
        "--liveness",
        default="http://127.0.0.1:8080/healthz",
        metavar="URL",
        help="liveness endpoint to serve (default: %(default)s)",
    )

    sub.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``auth0-rotator`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "run":
        from auth0_rotator.runtime import OperatorOptions, run_operator

        options = OperatorOptions(
            namespaces=tuple(args.namespace),
            log_format=args.log_format,
            verbose=args.verbose,
            liveness_endpoint=args.liveness,
        )
        try:
            asyncio.run(run_operator(options))
        except KeyboardInterrupt:
            logging.getLogger(__name__).info("interrupted")
        return 0
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse prevents this


if __name__ == "__main__":
    sys.exit(main())
