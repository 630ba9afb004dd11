"""AMQP frames written byte by byte, to publish what no well-behaved client would.

py-amqp (and kombu over it) refuses to encode most hostile properties: short strings
that are not UTF-8, timestamps past 2**63, tables nested thousands deep. These helpers
build the ``basic.publish`` frames by hand and write them on an open py-amqp connection,
so the broker delivers exactly these bytes to the worker or client under test.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from amqp import spec

from taskrpc.transport.frames import encode_table

#: Property flag bits of ``basic`` content headers, in wire order.
FLAGS = {
    "content_type": 1 << 15,
    "content_encoding": 1 << 14,
    "application_headers": 1 << 13,
    "delivery_mode": 1 << 12,
    "priority": 1 << 11,
    "correlation_id": 1 << 10,
    "reply_to": 1 << 9,
    "expiration": 1 << 8,
    "message_id": 1 << 7,
    "timestamp": 1 << 6,
    "type": 1 << 5,
    "user_id": 1 << 4,
    "app_id": 1 << 3,
    "cluster_id": 1 << 2,
}
_ORDER = list(FLAGS)
_SHORTSTR = {
    "content_type", "content_encoding", "correlation_id", "reply_to", "expiration",
    "message_id", "type", "user_id", "app_id", "cluster_id",
}  # fmt: skip


def shortstr(value: bytes | str) -> bytes:
    """A short string of exactly these bytes (str is UTF-8 encoded, surrogates kept)."""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return bytes([len(data)]) + data


def longstr(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def table(fields: Iterable[tuple[bytes | str, bytes]]) -> bytes:
    """A field table from ``(name, encoded value with its type letter)`` pairs."""
    return longstr(b"".join(shortstr(name) + value for name, value in fields))


def nested_arrays(depth: int) -> bytes:
    """An ``A`` field value: arrays ``depth`` deep."""
    value = b"A" + longstr(b"")
    for _ in range(depth - 1):
        value = b"A" + longstr(value)
    return value


def nested_tables(depth: int) -> bytes:
    """An ``F`` field value: tables ``depth`` deep."""
    value = b"F" + longstr(b"")
    for _ in range(depth - 1):
        value = b"F" + longstr(shortstr("t") + value)
    return value


def timestamp(seconds: int) -> bytes:
    """A ``T`` field value (unsigned 64-bit seconds)."""
    return b"T" + struct.pack(">Q", seconds)


def properties(values: dict[str, Any]) -> tuple[int, bytes]:
    """``(flags, bytes)`` of basic properties: bytes values go out as given (a short
    string's or a table's full encoding), others are encoded normally."""
    flags, parts = 0, []
    for name in _ORDER:
        if name not in values:
            continue
        value = values[name]
        flags |= FLAGS[name]
        if name in _SHORTSTR:
            parts.append(value if isinstance(value, bytes) else shortstr(value))
        elif name == "application_headers":
            parts.append(value if isinstance(value, bytes) else encode_table(value))
        elif name in ("delivery_mode", "priority"):
            parts.append(bytes([value]))
        else:
            parts.append(struct.pack(">Q", value))
    return flags, b"".join(parts)


def publish_frames(
    channel_id: int,
    routing_key: str,
    body: bytes,
    props: dict[str, Any],
    *,
    exchange: str = "",
    frame_max: int = 131072,
    announced_size: int | None = None,
) -> bytes:
    """The method, content header and body frames of one ``basic.publish``."""
    method = struct.pack(">HHH", 60, 40, 0) + shortstr(exchange) + shortstr(routing_key) + b"\0"
    flags, encoded = properties(props)
    size = len(body) if announced_size is None else announced_size
    header = struct.pack(">HHQH", 60, 0, size, flags) + encoded
    frames = [_frame(1, channel_id, method), _frame(2, channel_id, header)]
    chunk = frame_max - 8
    for start in range(0, len(body), chunk):
        frames.append(_frame(3, channel_id, body[start : start + chunk]))
    return b"".join(frames)


def _frame(kind: int, channel_id: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", kind, channel_id, len(payload)) + payload + b"\xce"


class RawPublisher:
    """Writes hand-made ``basic.publish`` frames on its own py-amqp connection.

    Publisher confirms make each publish wait until the broker took it, so a test knows
    the message is queued (or the broker refused the frames and closed the channel).
    """

    def __init__(self, broker_url: str) -> None:
        from kombu import Connection

        self._kombu = Connection(broker_url, connect_timeout=5)
        self.connection = self._kombu.connection  # py-amqp's
        self.channel = self.connection.channel()
        self.channel.confirm_select()

    def publish(self, routing_key: str, body: bytes, props: dict[str, Any], **options: Any) -> None:
        """Publish and wait for the broker's confirm."""
        frames = publish_frames(
            self.channel.channel_id,
            routing_key,
            body,
            props,
            frame_max=self.connection.frame_max,
            **options,
        )
        self.connection.transport.write(frames)
        self.channel.wait([spec.Basic.Ack, spec.Basic.Nack], timeout=10)

    def close(self) -> None:
        self._kombu.release()
