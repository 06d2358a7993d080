"""A TCP proxy in front of a local peer that a test can take down and bring back.

The code under test is pointed at ``proxy.url`` instead of the peer; the peer itself keeps
running (and keeps its state), only the path to it fails, as when a node, an API or a
gateway goes away:

- ``down("refuse")``: the listening socket is closed and every open connection is cut, so
  clients see "connection refused" (and pooled keep-alive connections break);
- ``down("503")``: connections are accepted and every HTTP request is answered
  ``503 Service Unavailable`` (an overloaded API behind a load balancer);
- ``up()``: forwarding again, on the same port;
- ``cut_after(marker)``: the first request whose bytes contain ``marker`` is forwarded to the
  peer, then the proxy goes down ("refuse") before the peer's answer returns — the peer acted,
  the caller never heard back.

The proxy runs its own event loop in a thread, so blocking clients called from the test's
event loop (web3's sync provider, requests) can use it too. ``forwarded`` counts requests
that reached the peer, ``refused`` the connections turned away while down.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Literal
from urllib.parse import urlsplit

from tests.stand_ins.chain import free_port

Mode = Literal["up", "refuse", "503"]
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b'Content-Length: 33\r\nConnection: close\r\n\r\n{"error": "service unavailable"}\n'
)


class Proxy:
    def __init__(self, target: str) -> None:
        parts = urlsplit(target if "://" in target else f"http://{target}")
        self.target_host = parts.hostname or "127.0.0.1"
        self.target_port = int(parts.port or 80)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode: Mode = "up"
        self.forwarded = 0
        self.refused = 0
        self._marker: bytes | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._open: set[asyncio.StreamWriter] = set()

    # ------------------------------------------------------------ control (any thread)

    def _run(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(10)

    def start(self) -> Proxy:
        self._thread.start()
        self._run(self._listen())
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def down(self, mode: Mode = "refuse") -> None:
        self._run(self._set(mode))

    def up(self) -> None:
        self._run(self._set("up"))

    def cut_after(self, marker: bytes) -> None:
        """Forward the next request containing ``marker``, then go down before it is answered."""
        self._marker = marker

    # ------------------------------------------------------------ inside the proxy's loop

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    def _close(self, listener: bool, keep: frozenset[asyncio.StreamWriter] = frozenset()) -> None:
        if listener and self._server is not None:
            self._server.close()  # the listening socket closes now: connections are refused
            self._server = None
        for w in list(self._open - keep):
            w.transport.abort()
            self._open.discard(w)

    async def _shutdown(self) -> None:
        self._close(listener=True)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _set(self, mode: Mode) -> None:
        self.mode = mode
        if mode == "up":
            await self._listen()
        else:
            self._close(listener=mode == "refuse")
            if mode == "503":
                await self._listen()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":  # raced with down(): as if the port were closed
            self.refused += 1
            writer.transport.abort()
            return
        self._open.add(writer)
        try:
            if self.mode == "503":
                await self._unavailable(reader, writer)
            else:
                await self._forward(reader, writer)
        finally:
            self._open.discard(writer)
            writer.transport.abort()

    async def _unavailable(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.refused += 1
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(UNAVAILABLE)
            await writer.drain()
            # let the client finish sending its body before the connection closes
            with contextlib.suppress(TimeoutError):
                while await asyncio.wait_for(reader.read(65536), 1):
                    pass

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            return
        self._open.add(up_w)
        cut = asyncio.Event()

        async def client_to_peer() -> None:
            while not cut.is_set() and (data := await reader.read(65536)):
                self.forwarded += data.startswith((b"GET ", b"POST ", b"PUT ", b"PATCH "))
                up_w.write(data)
                await up_w.drain()
                if self._marker is not None and self._marker in data:
                    self._marker = None
                    cut.set()
                    # from now on nothing else gets through: new connections are refused,
                    # the others cut at once, this one once the peer has read the request
                    self.mode = "refuse"
                    self._close(listener=True, keep=frozenset({writer, up_w}))

        async def peer_to_client() -> None:
            while data := await up_r.read(65536):
                if cut.is_set():
                    return
                writer.write(data)
                await writer.drain()

        async def cutter() -> None:
            await cut.wait()
            await asyncio.sleep(0.2)  # the peer has the request; its answer never comes back
            self._close(listener=True)

        tasks = [asyncio.ensure_future(c) for c in (client_to_peer(), peer_to_client(), cutter())]
        try:
            await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
        except Exception:
            pass
        finally:
            if not cut.is_set():
                tasks[2].cancel()
            for t in tasks[:2]:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._open.discard(up_w)
            up_w.transport.abort()


@contextmanager
def proxy(target: str) -> Iterator[Proxy]:
    p = Proxy(target).start()
    try:
        yield p
    finally:
        p.stop()
