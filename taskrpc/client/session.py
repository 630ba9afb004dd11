"""One broker connection of the client, as its drivers use it: publish, declare, events.

A :class:`Session` opens a connection and a channel with publisher confirms, consumes
the reply queue, and turns what the broker sends into calls on an :class:`Events`
handler (a reply, a confirm, a return, ``connection.blocked``). It holds no call state:
that is the state machine's (:mod:`taskrpc.client.machine`). Only the thread holding the
client's I/O lock may use it.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from amqp.exceptions import RecoverableConnectionError
from kombu import Consumer, Queue
from kombu.message import Message

from .. import delays
from ..exceptions import BrokerError
from ..settings import Settings
from ..transport import EventPump, connect, declare_task_queues, task_exchange
from ..transport.connection import is_virtual
from ..transport.direct_reply import DIRECT_REPLY_TO, learn_reply_to
from ..transport.nodes import BrokerNodes
from ..transport.publish import is_amqp_channel, publisher
from .replies import RawReply

__all__ = ["DIRECT_REPLY_TO", "REPLY_QUEUE_PREFIX", "Events", "Session"]

#: Callback queues are named this plus a random hex string.
REPLY_QUEUE_PREFIX = "taskrpc.reply."


class Events(Protocol):
    """What a session reports, from the thread that reads its connection."""

    def on_reply(self, reply: RawReply) -> None: ...
    def on_ack(self, tag: int, multiple: bool) -> None: ...
    def on_nack(self, tag: int, multiple: bool) -> None: ...
    def on_return(self, call_id: str, reason: str) -> None: ...
    def on_blocked(self, reason: str) -> None: ...
    def on_unblocked(self) -> None: ...


class Session:
    """A connected channel: reply queue consumed, confirms on (where the broker has them).

    Raises (from the constructor):
        BrokerError: The broker cannot be reached.
    """

    def __init__(
        self,
        settings: Settings,
        events: Events,
        *,
        nodes: BrokerNodes | None = None,
        direct: bool = False,
    ) -> None:
        self._settings = settings
        self._events = events
        self.connection = connection = connect(settings, nodes)
        try:
            self._open(connection, direct)
        except BaseException:
            connection.release()
            raise

    def _open(self, connection: Any, direct: bool) -> None:
        settings, events = self._settings, self._events
        #: Errors that mean the connection is gone (anything else is a bug).
        self.connection_errors: tuple[type[BaseException], ...] = (
            *connection.connection_errors,
            RecoverableConnectionError,
            ConnectionError,
            OSError,
        )
        #: Errors that close the channel (a declare refused, for example).
        self.channel_errors = tuple(connection.channel_errors)
        channel = connection.channel()
        self.confirms = not is_virtual(connection)
        # Before confirm mode: learning a direct reply-to name publishes a probe.
        self.reply_to = self._consume_replies(channel, direct)
        if self.confirms:
            channel.confirm_select()
            channel.events["basic_ack"].add(events.on_ack)
            channel.events["basic_nack"].add(events.on_nack)
            channel.events["basic_return"].add(self._on_return)
            amqp_connection = connection.connection
            amqp_connection.on_blocked = events.on_blocked
            amqp_connection.on_unblocked = events.on_unblocked
        task_exchange(settings)(channel).declare()
        self.channel = channel
        self.pump = EventPump(connection)
        self._publish = publisher(channel)

    def publish(
        self, body: bytes, properties: dict[str, Any], exchange: str, routing_key: str
    ) -> None:
        """Write one request (mandatory); its confirm comes as an event."""
        self._publish(body, properties, exchange, routing_key, True)

    def declare(self, queue: str) -> None:
        """Declare a task queue, or with :data:`taskrpc.delays.PREFIX` the delay cascade
        (round trips).

        Raises:
            BrokerError: The transport cannot hold delayed calls (in-process ones).
        """
        if queue != delays.PREFIX:
            declare_task_queues(self.channel, self._settings, [queue])
            return
        try:
            delays.declare_cascade(self.channel)
        except (AttributeError, NotImplementedError) as exc:  # in-process transports
            raise BrokerError(f"delayed calls need RabbitMQ: {exc}") from None

    def close(self) -> None:
        """Stop the pump and close the connection (the reply queue goes with it)."""
        self.pump.close()
        try:
            self.connection.release()
        except self.connection_errors:
            pass

    def _consume_replies(self, channel: Any, direct: bool) -> str:
        if direct:
            name = DIRECT_REPLY_TO
            queue = Queue(name, no_declare=True)(channel)
        else:
            name = f"{REPLY_QUEUE_PREFIX}{uuid.uuid4().hex}"
            queue = Queue(name, exclusive=True, auto_delete=True, durable=False)(channel)
            queue.declare()
        if is_amqp_channel(channel):
            # py-amqp directly: kombu's message wrapper costs a few µs per reply, and
            # py-amqp's attempt to decode each body by its content encoding ("binary"
            # is no codec) raises and catches an exception per reply.
            channel.auto_decode = False
            channel.basic_consume(name, no_ack=True, callback=self._on_amqp_reply)
            if direct:  # requests name the channel's own address, which they sign
                name = learn_reply_to(channel, self._settings.connect_timeout)
        else:  # in-process transports
            Consumer(
                channel, [queue], no_ack=True, on_message=self._on_message, auto_declare=False
            ).consume()
        return name

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        properties = getattr(message, "properties", {}) or {}
        correlation_id = properties.get("correlation_id")
        if correlation_id:
            self._events.on_return(correlation_id, str(exc))

    def _on_message(self, message: Message) -> None:
        self._events.on_reply(
            RawReply(
                message.body,
                message.content_type,
                message.content_encoding,
                message.headers,
                message.properties.get("correlation_id"),
                message.delivery_info.get("routing_key"),
            )
        )

    def _on_amqp_reply(self, message: Any) -> None:  # an amqp.Message
        properties = message.properties
        self._events.on_reply(
            RawReply(
                message.body,
                properties.get("content_type"),
                properties.get("content_encoding"),
                properties.get("application_headers"),
                properties.get("correlation_id"),
                message.delivery_info.get("routing_key"),
            )
        )
