"""The AMQP transport: one py-amqp connection and channel, with a fast path for the hot frames.

kombu opens the connection (URL parsing, ``amqps://``, connection options); after that
py-amqp is used directly: kombu's message wrapper costs a few µs per message. Publishes
and acks are frames of our own (:mod:`.frames`): py-amqp's ``basic_publish`` first tries
to read a frame (a timeout exception per publish, and it may eat a frame another reader
waits for) and its generic serializer costs some 15 µs more.
"""

from __future__ import annotations

import math
import select
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from amqp import exceptions as amqp_errors
from kombu import Connection

from ..settings import Settings
from . import compat, tls
from .amqp_events import AmqpEvents, message_handler, never
from .base import OnDelivery
from .batching import WriteBatch
from .frames import encode_ack, encode_publish
from .inbound import DeliveryReader
from .waker import Waker

#: Seconds a close waits for the broker's close-ok before dropping the socket anyway.
CLOSE_TIMEOUT = 1.0

#: Refusals no reconnection fixes.
REFUSALS: tuple[type[BaseException], ...] = (
    amqp_errors.PreconditionFailed,
    amqp_errors.AccessRefused,
    amqp_errors.NotAllowed,
)


class AmqpTransport(AmqpEvents, Waker):
    """:class:`~taskrpc.transport.base.Transport` over py-amqp. Open with
    :func:`taskrpc.transport.connect`."""

    def __init__(self, settings: Settings, url: str | None = None) -> None:
        super().__init__()
        url = url or settings.broker_url
        self._kombu = Connection(
            url,
            connect_timeout=settings.connect_timeout,
            heartbeat=int(settings.broker_heartbeat),
            ssl=tls.ssl_options(settings, url),
        )
        try:
            self._kombu.ensure_connection(max_retries=0)  # one try; our RetryPolicy retries
            # kombu's ``connection`` property would silently open a *new* connection once
            # this one is closed, hiding the loss: take py-amqp's object once.
            self._conn = conn = self._kombu.connection
            conn.on_blocked = self._blocked
            conn.on_unblocked = self._unblocked
            self._channel = channel = conn.channel()
        except Exception:
            self._kombu.release()
            self._stop_waking()
            raise  # connect() words it, naming the node without its password
        channel.auto_decode = False  # bodies stay bytes
        channel.events["basic_return"].add(self._returned)
        self.heartbeat = float(conn.heartbeat or 0)
        self.recoverable_errors: tuple[type[BaseException], ...] = (
            OSError,
            *self._kombu.connection_errors,
            *self._kombu.channel_errors,
        )
        self.refusal_errors = REFUSALS
        self._transport = raw = compat.raw_transport(conn)
        self._sock = raw.sock
        self._read_ahead = compat.read_ahead_enabled() and compat.install_read_ahead(raw)
        self._plain = self._read_ahead and not tls.uses_tls(url)
        self._channel_id: int = channel.channel_id
        self._reader = (
            DeliveryReader(conn, channel.channel_id, settings.max_message_size, self._bad)
            if compat.frames_enabled()
            else None
        )
        self._published = 0
        self._writes = WriteBatch(self._send)
        self.batch, self.flush = self._writes.batch, self._writes.flush
        self._confirming = False
        self._next_beat = 0.0  # when heartbeat_check next has work to do
        self._dead = False  # heartbeats missed: close() drops the socket at once

    @property
    def sock(self) -> Any:
        """The connection's socket (an ``ssl.SSLSocket`` over TLS), for inspection only."""
        return self._socket()

    # -- topology ----------------------------------------------------------------------

    def declare_exchange(self, name: str, kind: str = "direct", *, durable: bool = True) -> None:
        self._channel.exchange_declare(name, kind, durable=durable, auto_delete=False)

    def declare_queue(
        self,
        name: str,
        *,
        durable: bool = True,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> str:
        result = self._channel.queue_declare(
            name,
            durable=durable,
            exclusive=exclusive,
            auto_delete=auto_delete,
            arguments=dict(arguments) if arguments else None,
        )
        return str(result[0])

    def bind_queue(self, queue: str, exchange: str, routing_key: str) -> None:
        self._channel.queue_bind(queue, exchange, routing_key)

    def bind_exchange(self, destination: str, source: str, routing_key: str) -> None:
        self._channel.exchange_bind(destination, source, routing_key)

    def qos(self, prefetch: int) -> None:
        self._channel.basic_qos(0, prefetch, False)

    def confirm_select(self) -> None:
        self._channel.confirm_select()
        if self._reader is not None:  # confirms parsed with the deliveries
            self._reader.on_confirm = self._confirmed
        self._channel.events["basic_ack"].add(self._acked)
        self._channel.events["basic_nack"].add(self._nacked)
        self._confirming, self._published = True, 0

    # -- messages ----------------------------------------------------------------------

    def consume(self, queue: str, callback: OnDelivery, *, no_ack: bool = False) -> str:
        if self._reader is not None:  # deliveries are read by .inbound
            tag = f"taskrpc.{uuid.uuid4().hex}"
            self._reader.add(tag, callback, no_ack)
            self._channel.basic_consume(queue, tag, no_ack=no_ack, callback=never)
            return tag

        handler = message_handler(callback)  # py-amqp reads the messages
        return str(self._channel.basic_consume(queue, no_ack=no_ack, callback=handler))

    def cancel(self, consumer_tag: str) -> None:
        self._writes.flush()  # what went before goes first
        self._channel.basic_cancel(consumer_tag)
        if self._reader is not None:
            self._reader.remove(consumer_tag)

    def publish(
        self,
        body: bytes,
        properties: Mapping[str, Any],
        exchange: str,
        routing_key: str,
        *,
        mandatory: bool = False,
    ) -> int:
        frame_max = self._conn.frame_max
        self._write(
            encode_publish(
                self._channel_id, frame_max, exchange, routing_key, mandatory, body, properties
            )
        )
        if not self._confirming:
            return 0
        self._published += 1
        return self._published

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self._write(encode_ack(self._channel_id, delivery_tag, multiple))

    def reject(self, delivery_tag: int, requeue: bool) -> None:
        self._writes.flush()  # written by py-amqp: after what was held, in order
        self._channel.basic_reject(delivery_tag, requeue)

    def _write(self, frames: bytes) -> None:
        self._writes.write(frames)

    def _send(self, frames: bytes) -> None:
        transport = compat.raw_transport(self._conn)  # None once py-amqp closed it
        if transport is None or not self._channel.is_open:
            raise amqp_errors.RecoverableConnectionError("the broker connection is closed")
        transport.write(frames)
        self._conn.bytes_sent += 1  # py-amqp's heartbeat bookkeeping

    # -- input ---------------------------------------------------------------------------

    def fileno(self) -> int:
        number: int = self._socket().fileno()
        return number

    def buffered(self) -> bool:
        if self._plain:  # the hot path: read-ahead over plain TCP
            return bool(self._transport._read_buffer)
        return compat.buffered(self._transport)

    def drain(self, *, until: Callable[[], bool] | None = None, limit: int = 0) -> None:
        sock = self._socket()
        read_frame = self._conn.blocking_read
        handle = self._conn.on_inbound_frame
        raw, take = self._transport, (compat.next_buffered_frame if self._read_ahead else None)
        count = 0
        # Whole frames already read ahead are handled from the buffer. Otherwise buffered
        # bytes or a readable socket mean a frame is arriving: a blocking read finishes it
        # (no per-frame timeout exceptions). One frame at a time: py-amqp's
        # ``drain_events`` reads on until a whole method has come, so after a heartbeat
        # frame it would block until the broker next sent something.
        while True:
            frame = None if take is None else take(raw)
            if frame is not None:
                dispatched = handle(frame)
            elif self.buffered() or select.select([sock], [], [], 0)[0]:
                dispatched = read_frame(None)
            else:
                return
            if not dispatched:
                continue  # a heartbeat, or part of a message
            count += 1
            if count == limit or (until is not None and until()):
                return

    def heartbeat_check(self) -> None:
        if not self.heartbeat:
            return
        now = time.monotonic()
        if now < self._next_beat:
            return  # not due: called on every pass of a busy loop, so keep it cheap
        self._socket()
        try:
            self._conn.heartbeat_tick()  # sends one if due; raises after two silent intervals
        except amqp_errors.ConnectionForced:  # the link is dead: close without a word
            self._dead = True
            raise
        self._next_beat = now + self.heartbeat / 4

    def heartbeat_due(self) -> float:
        if not self.heartbeat:
            return math.inf
        return max(0.0, self._next_beat - time.monotonic())

    def close(self) -> None:
        self._stop_waking()
        # A graceful close waits for the broker's close-ok, reading with no timeout: on a
        # dead link (missed heartbeats, a partition) that wait would never end, and the
        # owner would never get to fail or resend its calls.
        sock = getattr(compat.raw_transport(self._conn), "sock", None)
        try:
            if self._dead:
                raise ConnectionError("heartbeats missed")
            if sock is not None:
                sock.settimeout(CLOSE_TIMEOUT)
            self._kombu.release()
        except Exception:  # already broken: nothing to tell the broker
            try:
                self._conn.collect()  # drop the socket without another word
            except Exception:
                pass

    def _socket(self) -> Any:
        current = getattr(compat.raw_transport(self._conn), "sock", None)
        if current is None or current is not self._sock:
            raise ConnectionError("the broker connection is closed")
        return current
