"""Every use of py-amqp's private parts, in one place, checked before it is relied on.

taskrpc reaches under py-amqp's public API in three places, each for speed or safety:

- **Read-ahead.** py-amqp asks the socket for exactly the bytes it parses next (three
  ``recv`` calls per frame). We replace the transport's ``_quick_recv`` (plain TCP and
  TLS alike) so each read asks for up to :data:`READ_AHEAD` bytes; py-amqp's ``_read``
  keeps the extra in ``_read_buffer``. Frames may then wait in that buffer while the
  socket is not readable, so :func:`buffered` must be consulted before every ``select``.
  Whole frames already in the buffer are cut out of it by :func:`next_buffered_frame`
  (one slice per frame, where py-amqp's ``read_frame`` makes three calls and slices).
  Over TLS, decrypted bytes may also wait inside the TLS layer (py-amqp decrypts whole
  records): :func:`buffered` looks there too, read-ahead or not.
- **The live transport.** ``Connection.transport`` is a property that silently
  *reconnects* a closed connection; ``Connection._transport`` is ``None`` once closed, so
  that is what we check before writing (:func:`raw_transport`).
- **Frames.** We write encoded frames straight to the transport (:mod:`.frames`), and
  wrap the connection's inbound frame handler (:func:`wrap_frame_handler`) so that
  deliveries are read by :mod:`.inbound`, decoding properties with
  :func:`.frames.decode_properties` (py-amqp's ``decode_properties_basic`` for what it
  does not read itself; :func:`decode_properties`).

:func:`self_test` runs once per process, on the first connection: it checks that the
attributes exist and that a read-ahead ``_read`` hands back exactly the bytes asked for,
keeping the rest, over a socket pair. If anything is off (a py-amqp release that renamed
or reworked them), read-ahead is turned off with one warning and py-amqp reads as it
always did. :func:`frames_self_test` does the same for the frame handler and the
properties decoder; if it fails, deliveries go through py-amqp's own handler (without
per-delivery isolation), again with one warning. The py-amqp range the suite runs on is
pinned in ``setup.cfg``.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
from typing import Any

from amqp.connection import Connection as AmqpConnection
from amqp.exceptions import UnexpectedFrame
from amqp.transport import SSLTransport, TCPTransport

from . import frames

logger = logging.getLogger("taskrpc.transport")

#: Bytes py-amqp may read past the frame it parses. Small, since py-amqp slices its
#: buffer on every read: 1 to 4 KiB measured fastest, 16 KiB already slower.
READ_AHEAD = 4096

_checked: bool | None = None
_frames_checked: bool | None = None
_check_lock = threading.Lock()


def raw_transport(connection: Any) -> Any:
    """py-amqp's transport of ``connection``, or ``None`` once it is closed (never
    reconnecting, unlike the public ``transport`` property)."""
    return getattr(connection, "_transport", None)


def read_ahead_enabled() -> bool:
    """Whether the self-test passed (run on first use); read-ahead is off otherwise."""
    global _checked
    if _checked is None:
        with _check_lock:
            if _checked is None:
                problem = self_test()
                if problem:
                    logger.warning(
                        "py-amqp read-ahead is off (%s); taskrpc still works, a little "
                        "slower: report your py-amqp version",
                        problem,
                    )
                _checked = not problem
    return _checked


def self_test() -> str:
    """Check what read-ahead relies on; return what is wrong, or ``""``."""
    for name in ("_read", "_setup_transport", "read_frame"):
        if not callable(getattr(TCPTransport, name, None)):
            return f"TCPTransport.{name} is missing"
    left, right = socket.socketpair()
    try:
        transport = TCPTransport.__new__(TCPTransport)
        transport.sock = right
        transport.connected = True
        transport.raise_on_initial_eintr = True
        transport._setup_transport()
        if not hasattr(transport, "_quick_recv") or not hasattr(transport, "_read_buffer"):
            return "TCPTransport has no _quick_recv/_read_buffer"
        install_read_ahead(transport)
        frame = b"\x08\x00\x00\x00\x00\x00\x00\xce"  # a heartbeat
        left.sendall(frame * 3)
        right.settimeout(2)
        got = transport.read_frame()
        if tuple(got[:2]) != (8, 0) or transport._read_buffer != frame * 2:
            return "a read-ahead read did not keep the bytes past the frame"
        if next_buffered_frame(transport) != (8, 0, b"") or transport._read_buffer != frame:
            return "a buffered frame was not cut out of the read-ahead buffer"
        if transport._read(8) != frame:
            return "buffered bytes were not handed back in order"
    except Exception as exc:  # anything at all: read-ahead is an optimisation
        return f"self-test failed: {type(exc).__name__}: {exc}"
    finally:
        left.close()
        right.close()
    return ""


def install_read_ahead(transport: Any) -> bool:
    """Have a py-amqp transport read up to :data:`READ_AHEAD` bytes per call.

    Returns whether it was done (unknown transports read as before).
    """
    sock = getattr(transport, "sock", None)
    if sock is None or not hasattr(transport, "_quick_recv"):
        return False
    if type(transport) is TCPTransport:
        read = sock.recv
    elif isinstance(transport, SSLTransport) and isinstance(sock, ssl.SSLSocket):
        read = sock.read
    else:
        return False

    def read_ahead(size: int) -> bytes:
        data: bytes = read(size if size > READ_AHEAD else READ_AHEAD)
        return data

    transport._quick_recv = read_ahead
    return True


_frame_head = struct.Struct(">BHI").unpack_from
_FRAME_END = 206


def next_buffered_frame(transport: Any) -> tuple[int, int, bytes] | None:
    """The next whole frame in a read-ahead transport's buffer, taken out of it, as
    py-amqp's ``read_frame`` returns frames; ``None`` if no whole frame is buffered.

    The buffer is updated before returning, so a frame handler that reads the
    connection itself (a synchronous method call) finds the frames after this one.

    Raises:
        UnexpectedFrame: The frame does not end with the frame-end octet.
    """
    buffer = transport._read_buffer
    if len(buffer) < 8:
        return None
    frame_type, channel, size = _frame_head(buffer, 0)
    end = 7 + size
    if len(buffer) <= end:
        return None
    if buffer[end] != _FRAME_END:
        raise UnexpectedFrame(f"Received frame_end {buffer[end]:#04x} while expecting 0xce")
    transport._read_buffer = buffer[end + 1 :]
    return frame_type, channel, buffer[7:end]


def buffered(transport: Any) -> bool:
    """Whether ``transport`` holds bytes not yet parsed: read ahead, or decrypted and
    waiting in the TLS layer."""
    if getattr(transport, "_read_buffer", None):
        return True
    sock = getattr(transport, "sock", None)
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def frames_enabled() -> bool:
    """Whether deliveries may be read by :mod:`.inbound` (self-tested on first use)."""
    global _frames_checked
    if _frames_checked is None:
        with _check_lock:
            if _frames_checked is None:
                problem = frames_self_test()
                if problem:
                    logger.warning(
                        "py-amqp's frame handler cannot be wrapped (%s): a delivery it cannot "
                        "decode will drop the connection; report your py-amqp version",
                        problem,
                    )
                _frames_checked = not problem
    return _frames_checked


def frames_self_test() -> str:
    """Check what :mod:`.inbound` relies on; return what is wrong, or ``""``."""
    handler = getattr(AmqpConnection, "on_inbound_frame", None)
    if not isinstance(handler, property) or handler.fset is None:
        return "Connection.on_inbound_frame is not a settable property"
    sample = {"content_type": "a/b", "application_headers": {"k": 1}, "correlation_id": "c"}
    flags, values = frames.encode_properties(sample)
    try:
        decoded = decode_properties(b"\0" * 12 + flags.to_bytes(2, "big") + values, 12)
    except Exception as exc:
        return f"decoding properties failed: {type(exc).__name__}: {exc}"
    if decoded != sample:
        return f"decoding properties gave {decoded!r}"
    return ""


def wrap_frame_handler(connection: Any, handler: Any) -> Any:
    """Install ``handler(frame) -> bool`` as ``connection``'s inbound frame handler; return
    py-amqp's, for the frames ``handler`` passes on."""
    original = connection.on_inbound_frame
    connection.on_inbound_frame = handler
    return original


def decode_properties(payload: bytes, offset: int) -> dict[str, Any]:
    """The basic properties of a content header payload (flags at ``offset``).

    Raises:
        Exception: Whatever py-amqp raises on what it cannot decode.
    """
    properties, end = frames.decode_properties(payload, offset)
    if end > len(payload):  # py-amqp slices past the end without noticing
        raise ValueError(f"properties run {end - len(payload)} bytes past the content header")
    return properties
