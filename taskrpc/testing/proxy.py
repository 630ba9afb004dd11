"""A fault-injecting TCP proxy for tests: put it between a client and the broker, break the link.

:class:`FaultProxy` listens on a local port and forwards every connection (a
:class:`Link`) to one upstream address. A :class:`Fault` says what happens to the bytes,
for all links or for one; change it at any time, from any thread::

    from taskrpc.testing.proxy import Direction, Fault, FaultProxy

    with FaultProxy(("127.0.0.1", 5672)) as proxy:
        app = App("shop", broker_url=proxy.url("amqp://guest:guest@127.0.0.1:5672//"))
        ...
        proxy.set(Fault(blackhole=Direction.BOTH))  # a partition: nothing gets through
        proxy.set(Fault())                           # healed: held bytes are delivered
        proxy.links[0].reset()                       # that connection gets a TCP RST
        proxy.refuse()                               # new connections are refused...
        proxy.accept()                               # ...until now

Faults are states: pass (``Fault()``), delay, blackhole one direction or both, cut after
``n`` bytes (with a reset), slice into small writes. A blackhole *holds* bytes rather than
dropping them, as a network partition does to TCP: nothing is read from the sender, so
its buffers fill, and what it sent arrives if the link heals before either end gives up.

The proxy runs on asyncio: ``with FaultProxy(...)`` (or :meth:`FaultProxy.start`) runs it
in a background thread for synchronous tests; ``async with FaultProxy(...)`` runs it on the
current event loop. It is a test tool: it has no limits and trusts both ends.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ._link import Direction, Fault, Link, Pipe

__all__ = ["Direction", "Fault", "FaultProxy", "Link"]

# Defined in ._link (which needs them and is imported here); public, and documented, here.
for _public in (Direction, Fault, Link):
    _public.__module__ = __name__

_T = TypeVar("_T")


class FaultProxy:
    """Forward connections from a local port to ``target``, with faults switchable at run time.

    Parameters:
        target: ``(host, port)`` every connection is forwarded to.
        host: Address to listen on.
        port: Port to listen on; ``0`` picks a free one (see :attr:`port`).

    Example:
        >>> with FaultProxy(("127.0.0.1", 5672)) as proxy:  # doctest: +SKIP
        ...     proxy.set(Fault(write_size=1))
    """

    def __init__(self, target: tuple[str, int], *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = target
        self.host = host
        self._port = port
        self._fault = Fault()
        self._links: list[Link] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._refusing = False

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the proxy listens on (known once started)."""
        return self._port

    def url(self, broker_url: str) -> str:
        """``broker_url`` with its host and port replaced by the proxy's."""
        parts = urlsplit(broker_url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.host}:{self.port}"))

    def start(self) -> FaultProxy:
        """Run the proxy on its own event loop in a daemon thread; return once it listens."""
        if self._loop is not None:
            raise RuntimeError("the proxy is already running")
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="taskrpc-fault-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        self._loop = loop
        try:
            asyncio.run_coroutine_threadsafe(self._listen(), loop).result(10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close the listener and every link; stop the background thread if there is one."""
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        if thread is None:
            raise RuntimeError("started with 'async with': leave the block (or await aclose())")
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None

    async def astart(self) -> FaultProxy:
        """Run the proxy on the running event loop; return once it listens."""
        if self._loop is not None:
            raise RuntimeError("the proxy is already running")
        self._loop = asyncio.get_running_loop()
        await self._listen()
        return self

    async def aclose(self) -> None:
        """Close the listener and every link (the counterpart of :meth:`astart`)."""
        if self._loop is not None:
            await self._close()
            self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> FaultProxy:
        return await self.astart()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- control (any thread) --------------------------------------------------------------

    @property
    def fault(self) -> Fault:
        """The fault of new links, and of all links since the last :meth:`set`."""
        return self._fault

    @property
    def links(self) -> list[Link]:
        """Links still open, oldest first."""
        return [link for link in self._links if not link.closed]

    def set(self, fault: Fault) -> None:
        """Apply ``fault`` to every open link and to every link opened from now on."""

        def apply() -> None:
            self._fault = fault
            for link in self.links:
                link.apply(fault)

        self._call(apply)

    def reset(self) -> None:
        """Reset every open link: both ends get a TCP RST."""

        def abort_all() -> None:
            for link in self.links:
                link.abort()

        self._call(abort_all)

    def refuse(self) -> None:
        """Stop listening: new connections are refused (open links carry on)."""
        self._refusing = True
        self._run(self._stop_listening())

    def accept(self) -> None:
        """Listen again, on the same port, after :meth:`refuse`."""
        self._refusing = False
        self._run(self._listen())

    # -- internals ---------------------------------------------------------------------------

    def _call(self, function: Callable[[], object]) -> None:
        async def run() -> None:
            function()

        self._run(run())

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T | None:
        """Run ``coroutine`` on the proxy's loop: wait for it from another thread, or schedule it.

        Called on that loop itself (an asyncio test), it is scheduled, not awaited.
        """
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise RuntimeError("the proxy is not running")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # called from the loop itself (an asyncio test): do it now
            asyncio.ensure_future(coroutine)
            return None
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(10)

    async def _listen(self) -> None:
        if self._server is not None or self._refusing:
            return
        self._server = await asyncio.start_server(
            self._on_client, self.host, self._port, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _close(self) -> None:
        self._refusing = True
        for link in self.links:
            link.abort()
        await self._stop_listening()
        if self._handlers:  # let each link's task see its end before the loop stops
            await asyncio.wait(list(self._handlers), timeout=5)

    async def _on_client(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(client_writer)
            return
        for writer in (client_writer, server_writer):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up = Pipe(Direction.UP, client_reader, server_writer)
        down = Pipe(Direction.DOWN, server_reader, client_writer)
        link = Link(
            client_writer.get_extra_info("peername"), up, down, abort=_abort, call=self._call
        )
        link.apply(self._fault)
        self._links = [*self.links, link]  # forget closed ones
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await link.run()
        finally:
            self._handlers.discard(task)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close ``writer``'s connection with a TCP RST rather than a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
