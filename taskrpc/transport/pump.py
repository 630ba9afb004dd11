"""EventPump: read what the broker sent, or wake early when another thread asks.

One thread owns a connection and calls :meth:`EventPump.wait`; other threads call
:meth:`EventPump.wake` when they have handed it work (a finished job, a stop request).

Why not ``connection.drain_events(timeout=...)``: it cannot be interrupted, so work
queued by another thread would wait for the timeout. Why not kombu's ``Hub``: it does not
wake when work is queued from inside the loop (measured: ~2 s stalls under pipelined load).
On a socket transport we ``select`` on the AMQP socket and a wake-up pipe, then read
every frame already available without blocking.

py-amqp asks the socket for exactly the bytes it parses next: three ``recv`` calls per
frame, nine per message. The pump has it read up to :data:`READ_AHEAD` bytes at a time
and keep the rest (measured: 45 to 26 µs of CPU per consumed message). So frames may wait
in py-amqp's buffer while the socket is not readable: :meth:`EventPump.buffered` says
so, and every ``select`` on the socket must look at it first.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable
from typing import Any

from amqp.transport import TCPTransport
from kombu import Connection

from . import tls
from .connection import is_virtual

#: Longest nap between polls of an in-process (``memory://``) transport.
_VIRTUAL_POLL = 0.005

#: Bytes py-amqp may read past the frame it parses. Small, since py-amqp slices its
#: buffer on every read: 1 to 4 KiB measured fastest, 16 KiB already slower.
READ_AHEAD = 4096


def _read_ahead(transport: Any) -> bool:
    """Have py-amqp's plain-TCP transport read up to :data:`READ_AHEAD` bytes per ``recv``.

    Its ``_read`` keeps whatever a ``recv`` returned beyond what it asked for, so only
    the ``recv`` needs replacing. Returns whether it was done (TLS and unknown
    transports read as before).
    """
    if tls.install_read_ahead(transport, READ_AHEAD):
        return True
    sock = getattr(transport, "sock", None)
    if type(transport) is not TCPTransport or sock is None or not hasattr(transport, "_quick_recv"):
        return False
    recv = sock.recv

    def recv_ahead(size: int) -> bytes:
        return recv(size if size > READ_AHEAD else READ_AHEAD)

    transport._quick_recv = recv_ahead
    return True


class EventPump:
    """Drives one connection's incoming frames from the thread that owns it."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._virtual = is_virtual(connection)
        # The py-amqp connection and its socket, taken once: kombu's ``connection``
        # property silently opens a *new* connection when the old one is closed, which
        # would hide the loss (and the channels, consumers and queues that went with it).
        self._amqp = None if self._virtual else connection.connection
        #: The AMQP socket (``None`` for in-process transports).
        self.sock = None if self._amqp is None else self._amqp.sock
        transport = None if self._amqp is None else self._amqp.transport
        self._transport = transport if _read_ahead(transport) else None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._woken = False
        self._closed = False

    def wake(self) -> None:
        """Make a current or the next :meth:`wait` return at once. Thread- and signal-safe."""
        if self._woken or self._closed:
            return  # a byte is already on its way (cleared before anything is consumed)
        self._woken = True
        try:
            os.write(self._wake_w, b"\0")
        except OSError:  # the pipe is full (already woken) or closed
            pass

    def wait(self, timeout: float) -> None:
        """Dispatch incoming frames; return once some arrived, on :meth:`wake`, or at ``timeout``.

        Raises:
            Any connection error from the transport (the caller decides how to recover).
        """
        if self._virtual:
            self._wait_virtual(timeout)
        elif self.poll(timeout):
            self.drain_ready()

    def buffered(self) -> bool:
        """Whether bytes already read from the socket wait to be parsed (see :data:`READ_AHEAD`)."""
        transport = self._transport
        return transport is not None and (bool(transport._read_buffer) or tls.pending(transport))

    def poll(self, timeout: float, *, watch_socket: bool = True) -> bool:
        """Wait like :meth:`wait` without reading; return whether frames are ready to read.

        With ``watch_socket=False`` only a :meth:`wake` (or the timeout) ends the wait.
        """
        if self._virtual:
            return True
        sock = self._socket()
        if watch_socket and self.buffered():
            timeout = 0  # frames are waiting already: just look for a wake-up
        watched = [sock, self._wake_r] if watch_socket else [self._wake_r]
        readable, _, _ = select.select(watched, [], [], 0 if self._woken else timeout)
        if self._wake_r in readable or self._woken:
            self._clear_wake()
        return sock in readable or (watch_socket and self.buffered())

    def drain_ready(self, *, until: Callable[[], bool] | None = None, limit: int = 0) -> None:
        """Dispatch the frames already received, without waiting for more.

        Parameters:
            until: Stop as soon as this returns true (checked after each method).
            limit: Stop after this many methods (0: no limit). Under a steady stream the
                socket never runs dry, and a reader that must also publish should not
                wait for it to.
        """
        if self._virtual:
            self._drain_virtual(0)
            return
        sock = self._socket()
        drain = self._amqp.drain_events
        count = 0
        # Buffered bytes or a readable socket mean a frame is arriving: a blocking read
        # finishes it (no per-frame timeout exceptions).
        while self.buffered() or select.select([sock], [], [], 0)[0]:
            drain(timeout=None)
            count += 1
            if count == limit or (until is not None and until()):
                return

    def close(self) -> None:
        """Stop the pump: later :meth:`wake` calls do nothing (the connection is the caller's).

        The pipe itself is closed only when the pump is garbage: a pool thread may still
        hold a callback that wakes this pump, and writing to a closed descriptor number
        could hit whatever reused it, such as the next connection's socket.
        """
        self._closed = True

    def __del__(self) -> None:
        for fd in (getattr(self, "_wake_r", -1), getattr(self, "_wake_w", -1)):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _socket(self) -> socket.socket:
        transport = getattr(self._amqp, "_transport", None)  # py-amqp drops it once closed
        current = getattr(transport, "sock", None)
        if self.sock is None or current is not self.sock:
            raise ConnectionError("the broker connection is closed")
        return self.sock

    def _clear_wake(self) -> None:
        self._woken = False
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _wait_virtual(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._woken:
            if self._drain_virtual(min(_VIRTUAL_POLL, max(0.0, deadline - time.monotonic()))):
                break
            if time.monotonic() >= deadline:
                break
        self._clear_wake()

    def _drain_virtual(self, timeout: float) -> bool:
        got = False
        while True:
            try:
                self.connection.drain_events(timeout=timeout)
                got, timeout = True, 0
            except TimeoutError:
                return got
