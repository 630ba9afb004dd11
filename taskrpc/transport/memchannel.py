"""The consumer side of an in-process connection, run under the broker's lock.

:meth:`~taskrpc.transport.membroker.InProcessBroker.dispatch` hands a connection's
consumers their messages here; the connection keeps them unacked (within its prefetch)
until settled, and posts each delivery, confirm or return to its inbox: a queue of
callbacks with a pipe that is readable while the inbox has something, so the owning
thread finds them in ``select`` and runs them in
:meth:`~taskrpc.transport.memory.InProcessTransport.drain`.
"""

from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Callable

from .base import Delivery
from .membroker import InProcessBroker, StoredMessage, Subscription
from .waker import Waker


class MemoryChannel(Waker):
    """Deliveries, unacked messages and the inbox of one in-process connection."""

    def __init__(self, broker: InProcessBroker) -> None:
        super().__init__()
        self._broker = broker
        self._inbox: collections.deque[Callable[[], None]] = collections.deque()
        self._signalled = False
        self._in_r, self._in_w = os.pipe()
        os.set_blocking(self._in_r, False)
        os.set_blocking(self._in_w, False)
        self._consumers: dict[str, Subscription] = {}
        self._unacked: dict[int, tuple[str, StoredMessage]] = {}
        self._tags = itertools.count(1)
        self._prefetch = 0
        self._open = True

    def _has_room(self) -> bool:
        return not self._prefetch or len(self._unacked) < self._prefetch

    def _deliver(self, consumer: Subscription, queue: str, message: StoredMessage) -> None:
        tag = next(self._tags)
        if not consumer.no_ack:
            self._unacked[tag] = (queue, message)
        properties = message.properties
        delivery = Delivery(
            tag,
            message.body,
            properties,
            properties.get("application_headers") or {},
            properties.get("content_type"),
            properties.get("content_encoding"),
            message.exchange,
            message.routing_key,
            message.redelivered,
            consumer.tag,
        )
        callback = consumer.callback
        self._post(lambda: callback(delivery))

    def _settle(self, tags: list[int], *, requeue: bool) -> None:
        broker, touched = self._broker, {}
        for tag in tags:
            entry = self._unacked.pop(tag, None)
            if entry is None:
                continue
            name, message = entry
            queue = broker.queues.get(name)
            if queue is not None:
                touched[name] = queue
                if requeue:
                    message.redelivered = True
                    queue.messages.appendleft(message)
        for consumer in self._consumers.values():  # room freed: more for our consumers
            queue = broker.queues.get(consumer.queue)
            if queue is not None:
                touched[queue.name] = queue
        for queue in touched.values():
            broker.dispatch(queue)

    def _post(self, event: Callable[[], None]) -> None:
        self._inbox.append(event)
        self._signal()

    def _signal(self) -> None:
        if self._signalled or not self._open:
            return
        self._signalled = True
        try:
            os.write(self._in_w, b"\0")
        except OSError:
            pass

    def _check_open(self) -> None:
        if not self._open:
            raise ConnectionError("the in-process connection is closed")
