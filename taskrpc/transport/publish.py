"""Publishing and acking on the hot path, straight onto the connection.

py-amqp's ``basic_publish`` first tries to read one frame (``drain_events(timeout=0)``)
so that clients which never read still hear ``connection.blocked``. Both of our sides
always read their socket, so that read only costs: about 6 µs and a timeout exception on
every publish, and it can consume a frame meant for another reader of the same
connection (the client's leader). Then py-amqp's generic method serializer costs some
15 µs more. :func:`publisher` and :func:`acker` write frames encoded by
:mod:`.frames` through the connection's transport instead, and fall back to kombu's
methods on in-process transports.

Only the thread that owns the connection may call them (as with py-amqp itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amqp.exceptions import RecoverableConnectionError

from .frames import encode_ack, encode_publish

#: ``publish(body, properties, exchange, routing_key, mandatory)``; ``properties`` are
#: py-amqp's names (``content_type``, ``application_headers``, ``correlation_id``...).
Publish = Callable[[bytes, dict[str, Any], str, str, bool], None]

#: ``ack(delivery_tag, multiple)``.
Ack = Callable[[Any, bool], None]


def is_amqp_channel(channel: Any) -> bool:
    """Whether ``channel`` is py-amqp's (a socket transport), not an in-process kombu one."""
    return hasattr(channel, "send_method") and hasattr(channel, "auto_decode")


def publisher(channel: Any) -> Publish:
    """Return a function that publishes a message on ``channel``."""
    if not is_amqp_channel(channel):  # kombu's virtual (in-process) channels

        def publish_virtual(
            body: bytes,
            properties: dict[str, Any],
            exchange: str,
            routing_key: str,
            mandatory: bool,
        ) -> None:
            properties = dict(properties)
            message = channel.prepare_message(
                body,
                content_type=properties.pop("content_type", None),
                content_encoding=properties.pop("content_encoding", None),
                headers=properties.pop("application_headers", None),
                properties=properties,
            )
            channel.basic_publish(message, exchange, routing_key, mandatory=mandatory)

        return publish_virtual

    write, connection, channel_id = _writer(channel), channel.connection, channel.channel_id

    def publish(
        body: bytes, properties: dict[str, Any], exchange: str, routing_key: str, mandatory: bool
    ) -> None:
        write(
            encode_publish(
                channel_id, connection.frame_max, exchange, routing_key, mandatory, body, properties
            )
        )

    return publish


def acker(channel: Any) -> Ack:
    """Return a function that acks deliveries on ``channel``."""
    if not is_amqp_channel(channel):
        # kombu's virtual channels ignore ``multiple``: callers must ack one by one.
        return lambda delivery_tag, multiple: channel.basic_ack(delivery_tag)

    write, channel_id = _writer(channel), channel.channel_id

    def ack(delivery_tag: Any, multiple: bool) -> None:
        write(encode_ack(channel_id, delivery_tag, multiple))

    return ack


def _writer(channel: Any) -> Callable[[bytes], None]:
    """Write encoded frames for ``channel`` onto its connection, as py-amqp would."""
    connection = channel.connection

    def write(frames: bytes) -> None:
        if not channel.is_open or connection.transport is None:
            raise RecoverableConnectionError("the channel is closed")
        connection.transport.write(frames)
        connection.bytes_sent += 1  # py-amqp's heartbeat bookkeeping

    return write
