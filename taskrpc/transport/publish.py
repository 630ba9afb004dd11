"""Publishing without the read py-amqp hides in ``basic_publish``.

py-amqp's ``basic_publish`` first tries to read one frame (``drain_events(timeout=0)``)
so that clients which never read still hear ``connection.blocked``. Both of our sides
always read their socket, so that read only costs: about 6 µs and a timeout exception on
every publish, and, worse, it can consume a frame meant for another reader of the same
connection (the client's leader). :func:`publisher` sends the ``basic.publish`` method
itself on an AMQP channel, and falls back to ``basic_publish`` on in-process transports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: ``publish(message, exchange, routing_key, mandatory)``.
Publish = Callable[[Any, str, str, bool], None]

_BASIC_PUBLISH = (60, 40)  # AMQP 0-9-1 class basic, method publish
_PUBLISH_ARGS = "Bssbb"  # reserved, exchange, routing key, mandatory, immediate


def publisher(channel: Any) -> Publish:
    """Return a function that publishes a prepared message on ``channel``."""
    send_method = getattr(channel, "send_method", None)
    if send_method is None:  # kombu's virtual (in-process) channels

        def publish_virtual(message: Any, exchange: str, routing_key: str, mandatory: bool) -> None:
            channel.basic_publish(message, exchange, routing_key, mandatory=mandatory)

        return publish_virtual

    def publish(message: Any, exchange: str, routing_key: str, mandatory: bool) -> None:
        arguments = (0, exchange, routing_key, mandatory, False)
        send_method(_BASIC_PUBLISH, _PUBLISH_ARGS, arguments, message)

    return publish
