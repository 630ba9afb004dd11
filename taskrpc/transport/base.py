"""The transport interface: what the client and the worker know of a broker connection.

A :class:`Transport` is one broker connection with one channel on it, owned by one
thread at a time (py-amqp connections are not thread-safe). Two implementations:
``taskrpc.transport.amqp.AmqpTransport`` (RabbitMQ, through py-amqp) and
``taskrpc.transport.memory.InProcessTransport`` (``memory://``, a broker inside
the process). Open one with ``taskrpc.transport.connect(settings)``; nothing outside this
package needs to know which one it has.

**Threads.** Every method except :meth:`~Transport.wake` must be called by the thread
that owns the transport, or with a lock held that all its users take. Callbacks
(deliveries and events) run inside :meth:`~Transport.drain` / :meth:`~Transport.wait`,
on the calling thread; a callback must not call :meth:`~Transport.drain` or
:meth:`~Transport.wait` itself (appending to a queue and returning is the usual shape).

**Driving it.** The simplest loop is::

    transport = connect(settings)
    transport.consume(queue, on_delivery)
    while running:
        transport.wait(1.0)          # returns on input, wake() or the timeout; sends
                                     # and checks heartbeats; dispatches callbacks
        ...publish, ack...

A loop that also waits on other things (a second pipe, asyncio's ``add_reader``) uses
the parts instead: select on :meth:`~Transport.fileno` (readable when input may be
waiting) unless :meth:`~Transport.buffered` says input is already read and unparsed;
call :meth:`~Transport.drain` when either is true; and call
:meth:`~Transport.heartbeat_check` at least every :meth:`~Transport.heartbeat_due`
seconds. :meth:`~Transport.poll` does the select part with the wake-up pipe included.

**Events.** Set the ``on_*`` attributes (plain callables, ``None`` for none):
publisher confirms (``on_confirm``), unroutable mandatory publishes (``on_return``),
RabbitMQ flow control (``on_blocked`` / ``on_unblocked``), and deliveries the transport
could not decode or refused for their size (``on_bad_delivery``; with none set, such a
delivery is rejected without requeue, and on a ``no_ack`` consumer simply dropped).

**Errors.** Anything after which a new connection may help is one of
:attr:`~Transport.recoverable_errors` (socket errors included); a refusal that no retry
fixes (a queue declared with other arguments, a missing permission) is one of
:attr:`~Transport.refusal_errors`. After either, close the transport and open another.

**Properties** of published and delivered messages use py-amqp's names:
``content_type``, ``content_encoding``, ``application_headers`` (the headers table),
``delivery_mode``, ``priority``, ``correlation_id``, ``reply_to``, ``expiration``,
``message_id``, ``timestamp``, ``type``, ``user_id``, ``app_id``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol


class Delivery(NamedTuple):
    """A message delivered to a consumer."""

    #: Tag to :meth:`~Transport.ack` or :meth:`~Transport.reject` it with (per transport).
    delivery_tag: int
    body: bytes
    #: Basic properties by py-amqp's names (``application_headers`` included).
    properties: dict[str, Any]
    #: The headers table (``{}`` when none).
    headers: dict[str, Any]
    content_type: str | None
    content_encoding: str | None
    exchange: str
    routing_key: str
    #: Whether the broker delivered it before (to this or another consumer).
    redelivered: bool
    consumer_tag: str


class BadDelivery(NamedTuple):
    """A delivery the transport could not decode, or refused for its announced size.

    The connection stays up; the delivery is the handler's to settle by its tag (unless
    its consumer is ``no_ack``).
    """

    delivery_tag: int
    consumer_tag: str
    #: Why, in words fit for a log line (no body content).
    reason: str
    #: Whether its consumer acks (``False``: already settled, nothing to reject).
    needs_settling: bool
    #: The ``correlation_id`` and ``reply_to`` properties when they could be read, so a
    #: policy can answer the caller.
    correlation_id: str | None = None
    reply_to: str | None = None
    #: The body size announced, when that is why it was refused (else 0).
    announced: int = 0
    #: Its properties when they decoded (a body too large), else ``None``; with the
    #: delivery's exchange, routing key and redelivered flag.
    properties: dict[str, Any] | None = None
    exchange: str = ""
    routing_key: str = ""
    redelivered: bool = False


class Returned(NamedTuple):
    """A mandatory publish the broker could not route and sent back."""

    reply_code: int
    reply_text: str
    exchange: str
    routing_key: str
    properties: dict[str, Any]


#: ``on_delivery(delivery)``, given to :meth:`Transport.consume`.
OnDelivery = Callable[[Delivery], None]
#: ``on_confirm(sequence, multiple, ack)``: the broker took (``ack``) or refused publish
#: number ``sequence`` (and every earlier one if ``multiple``); numbers as returned by
#: :meth:`Transport.publish`.
OnConfirm = Callable[[int, bool, bool], None]


class Transport(Protocol):
    """One broker connection with one channel, used by one thread at a time."""

    #: Negotiated heartbeat interval in seconds; 0 when off, and for in-process transports.
    heartbeat: float
    #: Errors after which reconnecting may help.
    recoverable_errors: tuple[type[BaseException], ...]
    #: Errors that reconnecting cannot fix (conflicting declarations, permissions).
    refusal_errors: tuple[type[BaseException], ...]
    #: ``on_confirm(sequence, multiple, ack)``: the broker took (``ack``) or refused
    #: publish number ``sequence`` (and every earlier one if ``multiple``).
    on_confirm: OnConfirm | None
    #: ``on_return(returned)``: a mandatory publish came back unrouted (before its confirm).
    on_return: Callable[[Returned], None] | None
    #: ``on_blocked(reason)``: RabbitMQ stopped reading our publishes (a resource alarm).
    on_blocked: Callable[[str], None] | None
    #: ``on_unblocked()``: the alarm cleared.
    on_unblocked: Callable[[], None] | None
    #: ``on_bad_delivery(bad)``: a delivery that could not be decoded or was too large;
    #: see :class:`BadDelivery`. Unset: rejected without requeue.
    on_bad_delivery: Callable[[BadDelivery], None] | None

    def declare_exchange(self, name: str, kind: str = "direct", *, durable: bool = True) -> None:
        """Declare an exchange; safe to repeat with the same arguments."""

    def declare_queue(
        self,
        name: str,
        *,
        durable: bool = True,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> str:
        """Declare a queue (a server-named one if ``name`` is empty); return its name."""

    def bind_queue(self, queue: str, exchange: str, routing_key: str) -> None:
        """Bind ``queue`` to ``exchange`` with ``routing_key``."""

    def bind_exchange(self, destination: str, source: str, routing_key: str) -> None:
        """Bind exchange ``destination`` to ``source`` (RabbitMQ's exchange-to-exchange
        bindings; the in-process transport raises ``NotImplementedError``)."""

    def qos(self, prefetch: int) -> None:
        """Deliver at most ``prefetch`` unacked messages to this channel (0: no limit)."""

    def confirm_select(self) -> None:
        """Turn on publisher confirms: :attr:`on_confirm` hears of every later publish."""

    def consume(self, queue: str, callback: OnDelivery, *, no_ack: bool = False) -> str:
        """Start consuming ``queue``; return the consumer tag."""

    def cancel(self, consumer_tag: str) -> None:
        """Stop a consumer; its unacked deliveries stay unacked."""

    def publish(
        self,
        body: bytes,
        properties: Mapping[str, Any],
        exchange: str,
        routing_key: str,
        *,
        mandatory: bool = False,
    ) -> int:
        """Publish one message; return its confirm sequence number (0 without confirms).

        Never waits for the broker; under ``connection.blocked`` the bytes queue in the
        socket.
        """

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        """Acknowledge a delivery (and every earlier one on the channel if ``multiple``)."""

    def reject(self, delivery_tag: int, requeue: bool) -> None:
        """Reject a delivery: back to its queue, or dropped (dead-lettered if set up)."""

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Within the block, publishes and acks are held and written together when it ends
        (or at :meth:`flush`): one write and one broker wake-up for many. Frames keep
        their order; anything else sent to the broker (a reject, a cancel) flushes first.
        """

    def flush(self) -> None:
        """Write what a :meth:`batch` holds now; the batch stays open."""

    def fileno(self) -> int:
        """A descriptor that is readable when input may be waiting."""

    def buffered(self) -> bool:
        """Whether input is already read and waits to be parsed (select would not see it)."""

    def poll(self, timeout: float, *, watch_input: bool = True) -> bool:
        """Wait for input (unless ``watch_input`` is false), :meth:`wake` or ``timeout``.

        Returns whether input is ready for :meth:`drain`. Reads nothing.
        """

    def drain(self, *, until: Callable[[], bool] | None = None, limit: int = 0) -> None:
        """Dispatch what has arrived, without waiting for more.

        Parameters:
            until: Stop as soon as this returns true (checked after each method).
            limit: Stop after this many methods (0: no limit).
        """

    def wait(self, timeout: float) -> None:
        """:meth:`heartbeat_check`, then :meth:`poll` (shortened to the next heartbeat) and
        :meth:`drain`: return once something arrived, on :meth:`wake`, or at ``timeout``."""

    def heartbeat_check(self) -> None:
        """Send a heartbeat if one is due; raise a recoverable error if the broker has
        been silent for two intervals."""

    def heartbeat_due(self) -> float:
        """Seconds until :meth:`heartbeat_check` must run again (``inf`` when off)."""

    def wake(self) -> None:
        """Make a current or the next :meth:`poll` / :meth:`wait` return at once.

        The one method any thread (or a signal handler) may call.
        """

    def close(self) -> None:
        """Close the connection (quietly if it is already broken). Idempotent."""
