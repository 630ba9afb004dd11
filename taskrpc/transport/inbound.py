"""Deliveries read from frames by our own code: one bad delivery never drops the connection.

py-amqp decodes a delivery's method and properties inside its frame handler; anything it
cannot decode (a short string that is not UTF-8, a timestamp of 2**63 in a header table,
tables nested thousands deep) raises out of ``drain_events`` and the connection is lost,
so the broker redelivers the same message to the next worker. It also holds a body whole
before anyone can look at its size.

:class:`DeliveryReader` sits in front of py-amqp's frame handler and takes the frames of
``basic.deliver`` on its channel: the method is parsed by offsets (the delivery tag is at
a fixed place after the consumer tag), the properties are decoded in a ``try``, and the
body is collected up to the size the content header announced. A delivery whose method
strings or properties do not decode, or whose announced size is over the limit, becomes a
:class:`~taskrpc.transport.base.BadDelivery` carrying its tag; the body frames of an
oversized one are dropped as they arrive, never joined. Every other frame (connection
methods, heartbeats, returns) goes to py-amqp as before, except publisher confirms once
:attr:`DeliveryReader.on_confirm` is set: they are parsed here too (one per call, and
py-amqp's generic method dispatch costs more than the rest of reading them).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

from amqp.exceptions import UnexpectedFrame

from . import compat
from .base import BadDelivery, Delivery, OnDelivery

logger = logging.getLogger("taskrpc.transport")

#: ``basic.deliver``'s class and method ids, as they open its method frame.
_DELIVER = b"\x00\x3c\x00\x3c"
#: ``basic.ack`` and ``basic.nack`` (publisher confirms), read here too: one per call.
_CONFIRM_ACK, _CONFIRM_NACK = b"\x00\x3c\x00\x50", b"\x00\x3c\x00\x78"
_CONFIRMS = frozenset({_CONFIRM_ACK, _CONFIRM_NACK})
_confirm = struct.Struct(">QB").unpack_from
#: Methods py-amqp follows with content frames (``basic.return``, ``basic.get-ok``).
_CONTENT_METHODS = frozenset({(60, 50), (60, 71)})
_tag = struct.Struct(">Q").unpack_from
_header = struct.Struct(">HxxQ").unpack_from
_method_sig = struct.Struct(">HH").unpack_from


class _Partial:
    """A delivery whose content frames are still arriving."""

    __slots__ = (
        "consumer_tag",
        "tag",
        "redelivered",
        "exchange",
        "routing_key",
        "problem",
        "properties",
        "size",
        "received",
        "parts",
        "header_seen",
        "too_large",
        "decoded",
    )

    def __init__(self, consumer_tag: str, tag: int, redelivered: bool, exchange: str,
                 routing_key: str, problem: str) -> None:  # fmt: skip
        self.consumer_tag, self.tag, self.redelivered = consumer_tag, tag, redelivered
        self.exchange, self.routing_key, self.problem = exchange, routing_key, problem
        self.properties: dict[str, Any] = {}
        self.size = self.received = 0
        self.parts: list[bytes] = []
        self.header_seen = False
        self.too_large = self.decoded = False


class DeliveryReader:
    """Takes over ``basic.deliver`` frames on one channel of a py-amqp connection.

    Parameters:
        connection: The py-amqp connection; its inbound frame handler is wrapped.
        channel_id: The channel whose deliveries to read.
        max_body: Largest body announced that is taken (bytes); larger ones are refused.
        on_bad: Called with each :class:`BadDelivery`.
    """

    def __init__(
        self,
        connection: Any,
        channel_id: int,
        max_body: int,
        on_bad: Callable[[BadDelivery], None],
    ) -> None:
        self._connection = connection
        self._channel_id = channel_id
        self._max_body = max_body
        self._on_bad = on_bad
        self._consumers: dict[str, tuple[OnDelivery, bool]] = {}
        self._partial: _Partial | None = None
        self._delegating = False  # py-amqp is between a content method and its content
        #: ``(delivery_tag, multiple, ack)`` for each confirm; ``None``: py-amqp's events.
        self.on_confirm: Callable[[int, bool, bool], None] | None = None
        self._original = compat.wrap_frame_handler(connection, self.on_frame)

    def add(self, consumer_tag: str, callback: OnDelivery, no_ack: bool) -> None:
        """Route deliveries for ``consumer_tag`` to ``callback``."""
        self._consumers[consumer_tag] = (callback, no_ack)

    def remove(self, consumer_tag: str) -> None:
        """Forget a consumer; its late deliveries are rejected back to the queue."""
        self._consumers.pop(consumer_tag, None)

    def on_frame(self, frame: tuple[int, int, bytes]) -> bool:
        """py-amqp's frame handler contract: return whether a method was dispatched."""
        frame_type, channel, payload = frame
        if channel != self._channel_id or self._delegating:
            return self._delegate(frame)
        partial = self._partial
        if partial is None:
            head = payload[:4] if frame_type == 1 else b""
            if head == _DELIVER:
                self._connection.bytes_recv += 1  # py-amqp's heartbeat bookkeeping
                self._partial = _start(payload)
                return False
            on_confirm = self.on_confirm
            if on_confirm is not None and len(payload) >= 13 and head in _CONFIRMS:
                self._connection.bytes_recv += 1
                tag, bits = _confirm(payload, 4)
                on_confirm(tag, bool(bits & 1), head == _CONFIRM_ACK)
                return True
            return self._delegate(frame)
        self._connection.bytes_recv += 1
        if frame_type == 2 and not partial.header_seen:
            self._on_header(partial, payload)
        elif frame_type == 3 and partial.header_seen:
            self._on_body(partial, payload)
        else:
            raise UnexpectedFrame(f"frame type {frame_type} in the middle of a delivery")
        if partial.header_seen and partial.received >= partial.size:
            self._partial = None
            self._finish(partial)
            return True
        return False

    def _delegate(self, frame: tuple[int, int, bytes]) -> bool:
        dispatched = bool(self._original(frame))
        frame_type, channel, payload = frame
        if channel == self._channel_id and frame_type in (1, 2, 3):
            if frame_type == 1:
                self._delegating = _method_sig(payload, 0) in _CONTENT_METHODS
            elif dispatched:
                self._delegating = False
        return dispatched

    def _on_header(self, partial: _Partial, payload: bytes) -> None:
        partial.header_seen = True
        try:
            _, partial.size = _header(payload, 0)
        except struct.error as exc:
            raise UnexpectedFrame(f"a content header too short to read: {exc}") from None
        if partial.size > self._max_body:
            partial.too_large = True
            partial.problem = partial.problem or (
                f"body of {partial.size} bytes announced, over the limit of {self._max_body}"
            )
        try:
            partial.properties = compat.decode_properties(payload, 12)
            partial.decoded = True
        except Exception as exc:  # RecursionError, UnicodeDecodeError, OverflowError...
            partial.problem = partial.problem or f"undecodable properties ({_why(exc)})"

    def _on_body(self, partial: _Partial, payload: bytes) -> None:
        partial.received += len(payload)
        if partial.received > partial.size:
            raise UnexpectedFrame("more body than the content header announced")
        if not partial.problem:  # an oversized or broken body is dropped as it comes
            partial.parts.append(payload)

    def _finish(self, partial: _Partial) -> None:
        consumer = self._consumers.get(partial.consumer_tag)
        no_ack = consumer[1] if consumer is not None else False
        if partial.problem:
            properties = partial.properties
            self._on_bad(
                BadDelivery(
                    partial.tag,
                    partial.consumer_tag,
                    partial.problem,
                    not no_ack,
                    _text(properties.get("correlation_id")),
                    _text(properties.get("reply_to")),
                    partial.size if partial.too_large else 0,
                    properties if partial.decoded and partial.too_large else None,
                    partial.exchange,
                    partial.routing_key,
                    partial.redelivered,
                )
            )
            return
        if consumer is None:  # cancelled meanwhile: give it back to the queue
            logger.warning("delivery %s for an unknown consumer: requeued", partial.tag)
            self._original_reject(partial.tag)
            return
        parts = partial.parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        properties = partial.properties
        consumer[0](
            Delivery(
                partial.tag,
                bytes(body),
                properties,
                properties.get("application_headers") or {},
                properties.get("content_type"),
                properties.get("content_encoding"),
                partial.exchange,
                partial.routing_key,
                partial.redelivered,
                partial.consumer_tag,
            )
        )

    def _original_reject(self, tag: int) -> None:
        channel = self._connection.channels.get(self._channel_id)
        if channel is not None:
            channel.basic_reject(tag, requeue=True)


def _start(payload: bytes) -> _Partial:
    """Parse ``basic.deliver``'s arguments; a string that is not UTF-8 makes it bad."""
    try:
        offset = 4
        consumer_tag, offset = _shortstr(payload, offset)
        (tag,) = _tag(payload, offset)
        redelivered = bool(payload[offset + 8] & 1)
        exchange, offset = _shortstr(payload, offset + 9)
        routing_key, offset = _shortstr(payload, offset)
    except (struct.error, IndexError) as exc:
        raise UnexpectedFrame(f"a basic.deliver too short to read: {exc}") from None
    problem = ""
    strings = []
    for name, raw in (("consumer tag", consumer_tag), ("exchange", exchange),
                      ("routing key", routing_key)):  # fmt: skip
        try:
            strings.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            strings.append(raw.decode("utf-8", "replace"))
            problem = problem or f"its {name} is not UTF-8"
    return _Partial(strings[0], tag, redelivered, strings[1], strings[2], problem)


def _shortstr(payload: bytes, offset: int) -> tuple[bytes, int]:
    length = payload[offset]
    end = offset + 1 + length
    if end > len(payload):
        raise IndexError("short string past the end of the frame")
    return bytes(payload[offset + 1 : end]), end


def _why(exc: BaseException) -> str:
    text = str(exc)
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
