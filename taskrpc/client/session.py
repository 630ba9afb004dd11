"""One broker connection of the client, as its drivers use it: publish, declare, events.

A :class:`Session` opens a transport (:mod:`taskrpc.transport`), consumes the reply
queue, turns on publisher confirms, and passes what the broker sends to an
:class:`Events` handler (a reply, a confirm, a return, ``connection.blocked``, a
delivery the transport could not decode). It holds no call state: that is the state
machine's (:mod:`taskrpc.client.machine`). Only the thread holding the client's I/O lock
may use it, except :meth:`Session.wake`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

from .. import delays
from ..exceptions import BrokerError
from ..settings import Settings
from ..transport import BadDelivery, Delivery, Returned, connect, declare_task_queues
from ..transport.direct_reply import DIRECT_REPLY_TO, learn_reply_to
from ..transport.nodes import BrokerNodes
from .replies import RawReply

__all__ = ["DIRECT_REPLY_TO", "REPLY_QUEUE_PREFIX", "Events", "Session"]

logger = logging.getLogger("taskrpc.client")

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
    def on_bad_reply(self, reason: str) -> None: ...


class Session:
    """A connected channel: reply queue consumed, publisher confirms on.

    Raises (from the constructor):
        BrokerError: The broker cannot be reached.
    """

    #: Both transports confirm publishes.
    confirms = True

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
        self.transport = transport = connect(settings, nodes)
        # learn_reply_to raises TimeoutError if the broker never returns its probe.
        setup_errors: tuple[type[BaseException], ...] = (
            *transport.recoverable_errors,
            *transport.refusal_errors,
            TimeoutError,
        )
        try:
            # Before confirm mode: learning a direct reply-to name publishes a probe.
            self.reply_to = self._consume_replies(direct)
            transport.confirm_select()
            transport.on_confirm = self._on_confirm
            transport.on_return = self._on_return
            transport.on_blocked = events.on_blocked
            transport.on_unblocked = events.on_unblocked
            transport.on_bad_delivery = self._on_bad_delivery
            transport.declare_exchange(settings.exchange, "direct", durable=True)
        except setup_errors as exc:
            transport.close()
            reason = f"cannot set up the client's channel: {type(exc).__name__}: {exc}"
            raise BrokerError(reason) from exc
        except BaseException:
            transport.close()
            raise
        #: Errors that mean the connection is gone (anything else is a bug).
        self.connection_errors: tuple[type[BaseException], ...] = transport.recoverable_errors
        #: Errors that close the channel (a declaration refused, for example).
        self.channel_errors: tuple[type[BaseException], ...] = transport.refusal_errors
        # The hot path, bound once.
        self.fileno, self.buffered, self.drain = (
            transport.fileno,
            transport.buffered,
            transport.drain,
        )
        self.poll, self.wake = transport.poll, transport.wake
        self.heartbeat_check, self.heartbeat_due = (
            transport.heartbeat_check,
            transport.heartbeat_due,
        )

    def publish(
        self, body: bytes, properties: dict[str, Any], exchange: str, routing_key: str
    ) -> int:
        """Write one request (mandatory); return its confirm sequence number."""
        return self.transport.publish(body, properties, exchange, routing_key, mandatory=True)

    def declare(self, queue: str) -> None:
        """Declare a task queue, or with :data:`taskrpc.delays.PREFIX` the delay cascade
        (round trips).

        Raises:
            BrokerError: The transport cannot hold delayed calls (the in-process one).
        """
        if queue != delays.PREFIX:
            declare_task_queues(self.transport, self._settings, [queue])
            return
        try:
            delays.declare_cascade(self.transport)
        except NotImplementedError as exc:
            raise BrokerError(f"delayed calls need RabbitMQ: {exc}") from None

    def close(self) -> None:
        """Close the connection (the reply queue goes with it); idempotent."""
        self.transport.close()

    def _consume_replies(self, direct: bool) -> str:
        transport = self.transport
        if direct:
            name = DIRECT_REPLY_TO
        else:
            name = f"{REPLY_QUEUE_PREFIX}{uuid.uuid4().hex}"
            transport.declare_queue(name, exclusive=True, auto_delete=True, durable=False)
        transport.consume(name, self._on_delivery, no_ack=True)
        if direct:  # requests name the channel's own address, which they sign
            name = learn_reply_to(transport, self._settings.connect_timeout)
        return name

    def _on_confirm(self, tag: int, multiple: bool, ack: bool) -> None:
        if ack:
            self._events.on_ack(tag, multiple)
        else:
            self._events.on_nack(tag, multiple)

    def _on_return(self, returned: Returned) -> None:
        correlation_id = returned.properties.get("correlation_id")
        if correlation_id:
            reason = f"{returned.reply_code} {returned.reply_text}"
            self._events.on_return(correlation_id, reason)

    def _on_bad_delivery(self, bad: BadDelivery) -> None:
        # The reply consumer is no_ack: nothing to settle; the connection stays up.
        self._events.on_bad_reply(bad.reason)

    def _on_delivery(self, delivery: Delivery) -> None:
        self._events.on_reply(
            RawReply(
                delivery.body,
                delivery.content_type,
                delivery.content_encoding,
                delivery.headers,
                delivery.properties.get("correlation_id"),
                delivery.routing_key,
            )
        )
