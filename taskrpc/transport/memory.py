"""The in-process transport (``memory://``): a small broker inside the process, no polling.

It keeps AMQP's semantics where taskrpc relies on them: direct, fanout and topic exchanges and
the default exchange, durable/exclusive/auto-delete queues, round-robin consumers, prefetch,
ack (``multiple`` too), reject with or without requeue (``redelivered`` set), requeue of
unacked messages when a transport closes, mandatory returns, publisher confirms and
per-message ``expiration``. Not kept: persistence, priorities, dead-lettering.

Each transport has an inbox of callbacks to run and a pipe that becomes readable when
the inbox fills, so its owner waits in ``select`` like on a socket (and ``asyncio``'s
``add_reader`` works too): a publish wakes the consumer's thread at once. The broker
itself is in :mod:`.membroker`, a connection's deliveries and inbox in :mod:`.memchannel`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..exceptions import BrokerError
from .base import BadDelivery, OnConfirm, OnDelivery, Returned
from .membroker import (
    BROKER,
    UNSUPPORTED,
    ChannelError,
    InProcessBroker,
    MemoryQueue,
    StoredMessage,
    Subscription,
)
from .memchannel import MemoryChannel

__all__ = ["BROKER", "ChannelError", "InProcessBroker", "InProcessTransport"]


class InProcessTransport(MemoryChannel):
    """:class:`~taskrpc.transport.base.Transport` on the process's :data:`BROKER`."""

    heartbeat = 0.0
    recoverable_errors: tuple[type[BaseException], ...] = (OSError,)
    refusal_errors: tuple[type[BaseException], ...] = (ChannelError,)

    def __init__(self, broker: InProcessBroker = BROKER) -> None:
        super().__init__(broker)
        self.on_confirm: OnConfirm | None = None
        self.on_return: Callable[[Returned], None] | None = None
        self.on_blocked: Callable[[str], None] | None = None
        self.on_unblocked: Callable[[], None] | None = None
        self.on_bad_delivery: Callable[[BadDelivery], None] | None = None
        self._consumer_tags = itertools.count(1)
        self._confirming = False
        self._published = 0

    # -- topology ----------------------------------------------------------------------

    def declare_exchange(self, name: str, kind: str = "direct", *, durable: bool = True) -> None:
        if kind not in ("direct", "fanout", "topic"):
            raise ChannelError(f"the in-process broker has no {kind!r} exchanges")
        with self._broker.lock:
            self._check_open()
            if self._broker.exchanges.setdefault(name, kind) != kind:
                raise ChannelError(f"exchange {name!r} exists with another type")

    def declare_queue(
        self,
        name: str,
        *,
        durable: bool = True,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> str:
        unsupported = UNSUPPORTED.intersection(arguments or ())
        if unsupported:
            raise NotImplementedError(f"the in-process broker has no {sorted(unsupported)}")
        broker = self._broker
        with broker.lock:
            self._check_open()
            name = name or broker.server_name()
            queue = broker.queues.get(name)
            if queue is None:
                owner = self if exclusive else None
                broker.queues[name] = MemoryQueue(name, durable, owner, auto_delete)
            elif queue.exclusive is not None and queue.exclusive is not self:
                raise ChannelError(f"queue {name!r} is exclusive to another connection")
            elif queue.durable != durable:
                raise ChannelError(f"queue {name!r} exists with durable={queue.durable}")
            return name

    def bind_queue(self, queue: str, exchange: str, routing_key: str) -> None:
        with self._broker.lock:
            self._check_open()
            if exchange not in self._broker.exchanges:
                raise ChannelError(f"no exchange {exchange!r}")
            if queue not in self._broker.queues:
                raise ChannelError(f"no queue {queue!r}")
            self._broker.bindings[(exchange, routing_key)].add(queue)

    def bind_exchange(self, destination: str, source: str, routing_key: str) -> None:
        raise NotImplementedError("the in-process broker has no exchange-to-exchange bindings")

    def qos(self, prefetch: int) -> None:
        self._prefetch = prefetch

    def confirm_select(self) -> None:
        self._confirming, self._published = True, 0

    # -- messages ----------------------------------------------------------------------

    def consume(self, queue: str, callback: OnDelivery, *, no_ack: bool = False) -> str:
        broker = self._broker
        with broker.lock:
            self._check_open()
            target = broker.queues.get(queue)
            if target is None:
                raise ChannelError(f"no queue {queue!r}")
            if target.exclusive is not None and target.exclusive is not self:
                raise ChannelError(f"queue {queue!r} is exclusive to another connection")
            tag = f"ctag-{id(self):x}-{next(self._consumer_tags)}"
            consumer = Subscription(self, tag, queue, no_ack, callback)
            self._consumers[tag] = consumer
            target.consumers.append(consumer)
            target.had_consumer = True
            broker.dispatch(target)
            return tag

    def cancel(self, consumer_tag: str) -> None:
        with self._broker.lock:
            consumer = self._consumers.pop(consumer_tag, None)
            if consumer is not None:
                self._broker.remove_consumer(consumer)

    def publish(
        self,
        body: bytes,
        properties: Mapping[str, Any],
        exchange: str,
        routing_key: str,
        *,
        mandatory: bool = False,
    ) -> int:
        message = StoredMessage(bytes(body), _copy(properties), exchange, routing_key)
        expiration = properties.get("expiration")
        if expiration:
            message.expires = time.monotonic() + int(expiration) / 1000
        broker = self._broker
        with broker.lock:
            self._check_open()
            queues = broker.route(exchange, routing_key)
            for queue in queues:
                if len(queues) > 1:
                    message = StoredMessage(**{**message.__dict__, "properties": _copy(properties)})
                queue.messages.append(message)
                broker.dispatch(queue)
            if not queues and mandatory:
                returned = Returned(312, "NO_ROUTE", exchange, routing_key, _copy(properties))
                self._post(lambda: self.on_return and self.on_return(returned))
            if not self._confirming:
                return 0
            self._published += 1
            sequence = self._published
            self._post(lambda: self.on_confirm and self.on_confirm(sequence, False, True))
            return sequence

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        with self._broker.lock:
            tags = [t for t in self._unacked if t <= delivery_tag] if multiple else [delivery_tag]
            self._settle(tags, requeue=False)

    def reject(self, delivery_tag: int, requeue: bool) -> None:
        with self._broker.lock:
            self._settle([delivery_tag], requeue=requeue)

    # -- input ---------------------------------------------------------------------------

    def batch(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # in-process: nothing to save by holding

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        self._check_open()
        return self._in_r

    def buffered(self) -> bool:
        return bool(self._inbox)

    def drain(self, *, until: Callable[[], bool] | None = None, limit: int = 0) -> None:
        self._check_open()
        with self._broker.lock:
            self._signalled = False
            try:
                while os.read(self._in_r, 4096):
                    pass
            except OSError:  # empty
                pass
        count = 0
        while self._inbox:
            self._inbox.popleft()()
            count += 1
            if count == limit or (until is not None and until()):
                break
        if self._inbox:  # stopped early: keep the pipe readable for the next select
            with self._broker.lock:
                self._signal()

    def close(self) -> None:
        broker = self._broker
        with broker.lock:
            if not self._open:
                return
            self._open = False
            for consumer in list(self._consumers.values()):
                broker.remove_consumer(consumer)
            self._consumers.clear()
            self._settle(sorted(self._unacked), requeue=True)
            for queue in list(broker.queues.values()):
                if queue.exclusive is self:
                    broker.delete_queue(queue)
        self._stop_waking()
        for fd in (self._in_r, self._in_w):
            try:
                os.close(fd)
            except OSError:
                pass


def _copy(properties: Mapping[str, Any]) -> dict[str, Any]:
    copied = dict(properties)
    headers = copied.get("application_headers")
    if headers is not None:
        copied["application_headers"] = dict(headers)
    return copied


def connect_in_process(url: str) -> InProcessTransport:
    """A transport on the in-process broker (``memory://`` URLs; the rest is ignored)."""
    if not url.startswith("memory://"):
        raise BrokerError(f"not an in-process URL: {url}")
    return InProcessTransport()
