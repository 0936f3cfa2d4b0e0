"""The operator's own HTTP endpoints: liveness and Prometheus metrics.

Both are served by aiohttp (already kopf's HTTP stack) on the event loop, on
addresses of their own, for the whole life of the process: a standby waiting
for the Lease must answer its liveness probe too, which kopf's built-in
liveness endpoint (started only with the runtime) cannot do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["Endpoint", "Health", "parse_listen", "parse_url", "serve"]

Health = Callable[[], tuple[bool, dict[str, Any]]]
"""Returns (alive, details); details are shown in the probe's JSON answer."""


@dataclass(frozen=True)
class Endpoint:
    """Where to listen and which path to answer."""

    host: str
    port: int
    path: str


def parse_url(url: str) -> Endpoint:
    """``http://HOST:PORT/PATH`` as an :class:`Endpoint`; a clear error otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ValueError(f"expected http://HOST:PORT/PATH, got {url!r}")
    return Endpoint(parts.hostname, parts.port, parts.path or "/")


def parse_listen(address: str, path: str = "/metrics") -> Endpoint:
    """``HOST:PORT`` (IPv6 in brackets) as an :class:`Endpoint` serving ``path``."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return Endpoint(host.strip("[]") or "0.0.0.0", int(port), path)  # noqa: S104 - as asked


async def serve(
    liveness: Endpoint | None,
    health: Health,
    metrics: Endpoint | None,
    registry: CollectorRegistry,
) -> list[web.AppRunner]:
    """Start the endpoints; the caller cleans each runner up at shutdown."""
    runners: list[web.AppRunner] = []

    async def probe(_: web.Request) -> web.Response:
        alive, details = health()
        body = json.dumps({"status": "ok" if alive else "failing", **details})
        return web.Response(
            status=200 if alive else 503, text=body, content_type="application/json"
        )

    async def scrape(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    routes: dict[tuple[str, int], list[web.RouteDef]] = {}
    if liveness is not None:
        routes.setdefault((liveness.host, liveness.port), []).append(web.get(liveness.path, probe))
    if metrics is not None:
        routes.setdefault((metrics.host, metrics.port), []).append(web.get(metrics.path, scrape))
    try:
        for (host, port), defs in routes.items():
            app = web.Application()
            app.add_routes(defs)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port).start()
    except BaseException:
        for runner in runners:
            await runner.cleanup()
        raise
    return runners
