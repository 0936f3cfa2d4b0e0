"""Hostile HTTPS endpoints for the bounded-work tests: a trickle and an endless body.

``trickle`` answers every request one byte every ``interval`` seconds (per-read
timeouts never trip); ``endless`` answers 200 with a chunked body that never
ends, as fast as the socket takes it. Both count what they sent per connection
and notice when the client hangs up, so a test can assert that the client gave
up (and how much it read) without timing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Connection", "HostileServer", "ServerThread"]

_CHUNK = b"x" * 65536


@dataclass
class Connection:
    """One accepted connection: bytes sent, and whether the client hung up first."""

    sent: int = 0
    hung_up: bool = False


@dataclass
class HostileServer:
    """A TLS server on 127.0.0.1 misbehaving as ``mode`` (``trickle`` or ``endless``)."""

    mode: str
    cert: Path
    key: Path
    interval: float = 2.0
    connections: list[Connection] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def domain(self) -> str:
        """``127.0.0.1:<port>``, as a tenant's spec.domain."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> HostileServer:
        """Listen on a free port."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        for task in list(self._handlers):
            task.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        seen = Connection()
        self.connections.append(seen)
        try:
            await reader.readuntil(b"\r\n\r\n")
            # The client hanging up shows as the end of what it sends.
            hangup = asyncio.ensure_future(reader.read())
            try:
                await self._misbehave(writer, seen, hangup)
            finally:
                hangup.cancel()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            seen.hung_up = True
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _misbehave(
        self, writer: asyncio.StreamWriter, seen: Connection, hangup: asyncio.Future[bytes]
    ) -> None:
        if self.mode == "trickle":
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
            for byte in answer:
                writer.write(bytes([byte]))
                await writer.drain()
                seen.sent += 1
                await asyncio.wait([hangup], timeout=self.interval)
                if hangup.done():
                    seen.hung_up = True
                    return
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        while not hangup.done() and not writer.is_closing():
            writer.write(b"%x\r\n%s\r\n" % (len(_CHUNK), _CHUNK))
            await writer.drain()
            seen.sent += len(_CHUNK)
            # drain() does not yield while the buffer has room: let the hang-up be seen.
            await asyncio.sleep(0)
        seen.hung_up = True


class ServerThread:
    """Hostile servers run on an event loop of their own, for tests that are not async."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.servers: list[HostileServer] = []

    def start(self, server: HostileServer) -> HostileServer:
        """Start ``server`` on the thread's loop; return it once it listens."""
        asyncio.run_coroutine_threadsafe(server.start(), self.loop).result(10)
        self.servers.append(server)
        return server

    def stop(self) -> None:
        """Stop every server and the loop."""
        for server in self.servers:
            asyncio.run_coroutine_threadsafe(server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
