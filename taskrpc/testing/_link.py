"""One proxied connection of :class:`~taskrpc.testing.proxy.FaultProxy`, and its faults."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
from collections.abc import Callable
from typing import Any

#: Most bytes read from one end at a time.
CHUNK = 64 * 1024


class Direction(enum.Flag):
    """Which way bytes travel: from the client ``UP`` to the server, or ``DOWN`` back."""

    NONE = 0
    #: Client to server (requests, in the broker's case).
    UP = enum.auto()
    #: Server to client.
    DOWN = enum.auto()
    BOTH = UP | DOWN


@dataclasses.dataclass(frozen=True, kw_only=True)
class Fault:
    """What a link does to the bytes it forwards. ``Fault()`` passes them untouched.

    Attributes:
        blackhole: Directions in which nothing is forwarded (bytes are held, not lost).
        delay: Seconds each chunk waits before it is forwarded (order is kept).
        cut_after: Forward this many more bytes (both directions counted), then reset the
            link, which may well fall in the middle of a frame. Each new link counts
            afresh. ``None``: never.
        write_size: Forward in writes of at most this many bytes, each sent on its own
            (``1``: byte by byte). ``0``: as read.
    """

    blackhole: Direction = Direction.NONE
    delay: float = 0.0
    cut_after: int | None = None
    write_size: int = 0

    def __post_init__(self) -> None:
        if self.delay < 0 or self.write_size < 0 or (self.cut_after or 0) < 0:
            raise ValueError(f"negative value in {self!r}")


class Pipe:
    """One direction of a link: read from one end, hold, delay or slice, write to the other."""

    def __init__(
        self, direction: Direction, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.direction = direction
        self.reader = reader
        self.writer = writer
        #: Bytes and ``write`` calls forwarded so far.
        self.bytes = 0
        self.writes = 0
        self.delay = 0.0
        self.write_size = 0
        self.open = asyncio.Event()
        self.open.set()
        self._queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.open.wait()  # blackholed: leave the bytes with the sender
            data = await self.reader.read(CHUNK)
            self._queue.put_nowait((loop.time(), data))
            if not data:
                return

    async def write_loop(
        self, allow: Callable[[int], tuple[int, bool]], cut: Callable[[], None]
    ) -> None:
        """Forward queued chunks; call ``cut`` once ``allow`` says the link is cut."""
        loop = asyncio.get_running_loop()
        while True:
            read_at, data = await self._queue.get()
            await self.open.wait()
            wait = read_at + self.delay - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                return
            allowed, cutting = allow(len(data))
            await self._write(data[:allowed])
            if cutting:
                while self.writer.transport.get_write_buffer_size():
                    await asyncio.sleep(0.001)  # the allowed bytes leave before the reset
                cut()
                return

    async def _write(self, data: bytes) -> None:
        size = self.write_size or len(data) or 1
        for start in range(0, len(data), size):
            self.writer.write(data[start : start + size])
            await self.writer.drain()
            self.bytes += min(size, len(data) - start)
            self.writes += 1
            if size < len(data):
                await asyncio.sleep(0)  # let each small write leave on its own


class Link:
    """One client connection through the proxy, and its own upstream connection.

    Its fault follows the proxy's until :meth:`set` gives it its own (the next
    :meth:`FaultProxy.set <taskrpc.testing.proxy.FaultProxy.set>` overrides it again).
    """

    def __init__(
        self,
        peer: Any,
        up: Pipe,
        down: Pipe,
        *,
        abort: Callable[[asyncio.StreamWriter], None],
        call: Callable[[Callable[[], object]], None],
    ) -> None:
        #: The client's ``(host, port)``.
        self.peer = peer
        self.up = up
        self.down = down
        self.fault = Fault()
        self.closed = False
        self._abort_writer = abort
        self._call = call
        self._cut_left: int | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Link {self.peer} {state} up={self.up.bytes} down={self.down.bytes} {self.fault}>"

    def set(self, fault: Fault) -> None:
        """Apply ``fault`` to this link only. Callable from any thread."""
        self._call(lambda: self.apply(fault))

    def reset(self) -> None:
        """Close both ends of this link with a TCP RST. Callable from any thread."""
        self._call(self.abort)

    def apply(self, fault: Fault) -> None:
        """Apply ``fault`` (on the proxy's event loop)."""
        self.fault = fault
        self._cut_left = fault.cut_after
        for pipe in (self.up, self.down):
            pipe.delay = fault.delay
            pipe.write_size = fault.write_size
            if fault.blackhole & pipe.direction:
                pipe.open.clear()
            else:
                pipe.open.set()
        if self._cut_left == 0:
            self.abort()

    def abort(self) -> None:
        """Reset both ends now (on the proxy's event loop)."""
        if self.closed:
            return
        self.closed = True
        for pipe in (self.up, self.down):
            self._abort_writer(pipe.writer)
        for task in self._tasks:
            task.cancel()

    async def run(self) -> None:
        """Forward both ways until both ends are done, or one fails (then reset both)."""
        self._tasks = [
            asyncio.ensure_future(self.up.read_loop()),
            asyncio.ensure_future(self.down.read_loop()),
            asyncio.ensure_future(self.up.write_loop(self._allow, self.abort)),
            asyncio.ensure_future(self.down.write_loop(self._allow, self.abort)),
        ]
        try:
            await asyncio.gather(*self._tasks)
        except (OSError, asyncio.CancelledError):
            self.abort()
        finally:
            self.closed = True
            for pipe in (self.up, self.down):
                with contextlib.suppress(OSError, RuntimeError):
                    pipe.writer.close()
            for task in self._tasks:
                task.cancel()

    def _allow(self, size: int) -> tuple[int, bool]:
        """``(bytes that may pass, whether to cut after them)`` for a chunk of ``size``."""
        if self._cut_left is None:
            return size, False
        allowed = min(size, self._cut_left)
        self._cut_left -= allowed
        return allowed, self._cut_left == 0
