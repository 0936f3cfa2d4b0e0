"""Shell commands for the local control plane.

``python -m auth0_rotator_dev.devcluster up``    start it (background processes)
``python -m auth0_rotator_dev.devcluster env``   print ``export KUBECONFIG=...``
``python -m auth0_rotator_dev.devcluster down``  stop it
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from auth0_rotator_dev.devcluster import (
    ControlPlane,
    ControlPlaneError,
    default_state_dir,
    kube_bin_dir,
)
from auth0_rotator_dev.devcluster.processes import kill_recorded


def main(argv: list[str] | None = None) -> int:
    """Run one of ``up``, ``env``, ``down``."""
    parser = argparse.ArgumentParser(prog="python -m auth0_rotator_dev.devcluster")
    parser.add_argument("command", choices=["up", "env", "down"])
    parser.add_argument("--state-dir", type=Path, default=default_state_dir())
    parser.add_argument("--nodes", type=int, default=1)
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir
    kubeconfig = state_dir / "admin.kubeconfig"

    if args.command == "down":
        stopped = kill_recorded(state_dir)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    if args.command == "env":
        if not kubeconfig.exists():
            print(f"no cluster in {state_dir}; run `up` first", file=sys.stderr)
            return 1
        print(f"export KUBECONFIG={shlex.quote(str(kubeconfig))}")
        print(f'export PATH={shlex.quote(str(kube_bin_dir()))}:"$PATH"')
        return 0
    try:
        plane = ControlPlane(kube_bin_dir(), state_dir, nodes=args.nodes).start()
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"control plane up at {plane.server}")
    print(f"export KUBECONFIG={shlex.quote(str(plane.kubeconfig))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
