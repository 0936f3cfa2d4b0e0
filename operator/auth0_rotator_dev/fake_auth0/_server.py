"""Run the fake tenant on a real socket, over HTTP or HTTPS."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from aiohttp import web

from auth0_rotator_dev.fake_auth0._app import make_app
from auth0_rotator_dev.fake_auth0._state import Tenant
from auth0_rotator_dev.pki import CertificateAuthority

__all__ = ["FakeAuth0Server", "ensure_tls_files"]


def ensure_tls_files(tls_dir: Path, hosts: tuple[str, ...]) -> tuple[Path, Path, Path]:
    """Create (once) a CA and a server certificate for ``hosts`` in ``tls_dir``.

    Returns ``(ca.crt, tls.crt, tls.key)``; the CA file is what clients trust.
    """
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = tls_dir / "ca.crt", tls_dir / "tls.crt", tls_dir / "tls.key"
    if not (ca_file.exists() and cert_file.exists() and key_file.exists()):
        ca = CertificateAuthority.create("auth0-rotator fake Auth0 CA")
        ca.issue(hosts[0], hosts=hosts).write(cert_file, key_file)
        ca_file.write_bytes(ca.cert_pem)
    return ca_file, cert_file, key_file


class FakeAuth0Server:
    """The fake tenant listening on ``host:port`` (port 0 picks a free one).

    With ``tls_dir`` it serves HTTPS with a certificate for 127.0.0.1,
    localhost and ``extra_hosts``; :attr:`ca_file` is the CA to trust.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls_dir: Path | None = None,
        extra_hosts: tuple[str, ...] = (),
        domain: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls_dir = tls_dir
        self.extra_hosts = extra_hosts
        self._domain = domain
        self.ca_file: Path | None = None
        self.tenant: Tenant | None = None
        self._runner: web.AppRunner | None = None

    @property
    def domain(self) -> str:
        """The tenant domain clients use (``host:port`` unless given)."""
        return self._domain or f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the server."""
        scheme = "https" if self.tls_dir else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> FakeAuth0Server:
        """Bind the socket and start serving."""
        ssl_context = None
        if self.tls_dir is not None:
            hosts = ("127.0.0.1", "localhost", *self.extra_hosts)
            self.ca_file, cert, key = ensure_tls_files(self.tls_dir, hosts)
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(cert, key)
        # The tenant exists before the port is known; its domain is fixed after binding.
        tenant = Tenant(domain="pending")
        self.tenant = tenant
        # Like Auth0, finish processing a request even if the caller hung up.
        self._runner = web.AppRunner(make_app(tenant), access_log=None, handler_cancellation=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ssl_context)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]
        tenant.domain = self.domain
        return self

    async def stop(self) -> None:
        """Stop serving and close connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAuth0Server:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Start, then serve until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()
