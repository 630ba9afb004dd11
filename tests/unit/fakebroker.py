"""A scripted AMQP 0-9-1 broker on a local socket: frames in, frames out, no RabbitMQ.

It does the connection handshake, answers the synchronous methods a transport sends
(declarations, qos, consume, confirm.select, close) and records every frame it receives.
A test pushes raw bytes at the client with :meth:`FakeBroker.send`, in as many pieces
and with as much delay as it likes, and can make the broker go silent.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from amqp.serialization import dumps, loads

from taskrpc.transport.frames import encode_properties

#: Replies to synchronous methods: (class, method) -> (reply method, its format, args).
REPLIES: dict[tuple[int, int], tuple[tuple[int, int], str, tuple[Any, ...]]] = {
    (20, 10): ((20, 11), "S", ("",)),  # channel.open
    (20, 40): ((20, 41), "", ()),  # channel.close
    (10, 50): ((10, 51), "", ()),  # connection.close
    (60, 10): ((60, 11), "", ()),  # basic.qos
    (40, 10): ((40, 11), "", ()),  # exchange.declare
    (40, 30): ((40, 31), "", ()),  # exchange.bind
    (50, 20): ((50, 21), "", ()),  # queue.bind
    (85, 10): ((85, 11), "", ()),  # confirm.select
}


def frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    """One frame's bytes."""
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce"


def method(channel: int, sig: tuple[int, int], fmt: str = "", args: Iterable[Any] = ()) -> bytes:
    """A method frame."""
    payload = struct.pack(">HH", *sig) + (dumps(fmt, tuple(args)) if fmt else b"")
    return frame(1, channel, payload)


def deliver(
    consumer_tag: str | bytes,
    delivery_tag: int,
    body: bytes,
    properties: dict[str, Any] | None = None,
    *,
    channel: int = 1,
    routing_key: bytes = b"q",
    raw_properties: bytes | None = None,
    announced: int | None = None,
    frame_max: int = 131072,
) -> bytes:
    """The frames of one ``basic.deliver``: method, content header, body frames.

    ``raw_properties`` replaces the encoded properties (flags included) with any bytes;
    ``announced`` replaces the body size the header announces.
    """
    tag = consumer_tag.encode() if isinstance(consumer_tag, str) else consumer_tag
    args = (
        bytes([len(tag)]) + tag + struct.pack(">QB", delivery_tag, 0)
        + b"\x00" + bytes([len(routing_key)]) + routing_key
    )  # fmt: skip
    out = frame(1, channel, struct.pack(">HH", 60, 60) + args)
    if raw_properties is None:
        flags, values = encode_properties(properties or {})
        raw_properties = struct.pack(">H", flags) + values
    size = len(body) if announced is None else announced
    out += frame(2, channel, struct.pack(">HHQ", 60, 0, size) + raw_properties)
    chunk = frame_max - 8
    for start in range(0, len(body), chunk):
        out += frame(3, channel, body[start : start + chunk])
    return out


class FakeBroker:
    """Listens on 127.0.0.1; serves one connection at a time in a thread."""

    def __init__(self, heartbeat: int = 0) -> None:
        self.heartbeat = heartbeat
        self.received: list[tuple[int, int, bytes]] = []
        self.silent = False  # stop answering (and reading): a blackholed link
        self._changed = threading.Condition()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._conn: socket.socket | None = None
        self._consumers = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def close(self) -> None:
        self._server.close()
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass

    def send(self, data: bytes) -> None:
        """Write raw bytes to the client."""
        assert self._conn is not None, "no client connected"
        self._conn.sendall(data)

    def wait_for(self, predicate: Callable[[list[tuple[int, int, bytes]]], Any], timeout=10.0):
        """Wait until ``predicate(received)`` is true; return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate(self.received)
                if value:
                    return value
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; received {self.received!r}"
                self._changed.wait(left)

    def methods(self, sig: tuple[int, int]) -> list[bytes]:
        """Argument bytes of every received method ``sig``."""
        head = struct.pack(">HH", *sig)
        return [p[4:] for t, _, p in list(self.received) if t == 1 and p[:4] == head]

    # -- the broker side ---------------------------------------------------------------

    def _serve(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        self._conn = conn
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            assert self._read_exact(8).startswith(b"AMQP")
            self.send(method(0, (10, 10), "ooFSS", (0, 9, {}, "PLAIN AMQPLAIN", "en_US")))
            self._expect((10, 11))  # start-ok
            self.send(method(0, (10, 30), "BlB", (2047, 131072, self.heartbeat)))
            self._expect((10, 31))  # tune-ok
            self._expect((10, 40))  # open
            self.send(method(0, (10, 41), "s", ("",)))
            while True:
                self._answer(self._read_frame())
        except (OSError, AssertionError, struct.error):
            pass

    def _answer(self, received: tuple[int, int, bytes]) -> None:
        frame_type, channel, payload = received
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()
        if frame_type != 1 or self.silent:
            return
        sig = struct.unpack_from(">HH", payload)
        if sig in REPLIES:
            reply, fmt, args = REPLIES[sig]
            self.send(method(channel, reply, fmt, args))
        elif sig == (50, 10):  # queue.declare: answer with its name
            (_, name), _ = loads("Bs", payload, 4)
            self.send(method(channel, (50, 11), "sll", (name or "amq.gen-1", 0, 0)))
        elif sig in ((60, 20), (60, 30)):  # basic.consume / basic.cancel: the tag back
            fmt = "Bss" if sig == (60, 20) else "s"
            values, _ = loads(fmt, payload, 4)
            tag = values[-1] or f"ctag-{self._consumers}"
            self._consumers += 1
            self.send(method(channel, (sig[0], sig[1] + 1), "s", (tag,)))

    def _expect(self, sig: tuple[int, int]) -> None:
        frame_type, _, payload = self._read_frame()
        assert frame_type == 1 and struct.unpack_from(">HH", payload) == sig, payload

    def _read_frame(self) -> tuple[int, int, bytes]:
        while self.silent:
            time.sleep(0.05)  # read nothing: the client's bytes pile up unanswered
        frame_type, channel, size = struct.unpack(">BHI", self._read_exact(7))
        payload = self._read_exact(size)
        assert self._read_exact(1) == b"\xce"
        return frame_type, channel, payload

    def _read_exact(self, n: int) -> bytes:
        assert self._conn is not None
        data = b""
        while len(data) < n:
            chunk = self._conn.recv(n - len(data))
            if not chunk:
                raise OSError("client closed")
            data += chunk
        return data
