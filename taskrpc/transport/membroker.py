"""The in-process broker behind ``memory://``: queues, exchanges, bindings, dispatch.

Shared by every :class:`~taskrpc.transport.memory.InProcessTransport` of the process and
guarded by one lock; see :mod:`taskrpc.transport.memory` for what it keeps of AMQP.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import OnDelivery
    from .memchannel import MemoryChannel
    from .memory import InProcessTransport


class ChannelError(Exception):
    """A refused operation on the in-process broker (as AMQP's channel errors)."""


@dataclass
class StoredMessage:
    body: bytes
    properties: dict[str, Any]
    exchange: str
    routing_key: str
    expires: float = 0.0  # monotonic; 0: never
    redelivered: bool = False


@dataclass
class Subscription:
    transport: MemoryChannel
    tag: str
    queue: str
    no_ack: bool
    callback: OnDelivery


@dataclass
class MemoryQueue:
    name: str
    durable: bool
    exclusive: InProcessTransport | None
    auto_delete: bool
    messages: collections.deque[StoredMessage] = field(default_factory=collections.deque)
    consumers: list[Subscription] = field(default_factory=list)
    had_consumer: bool = False


class InProcessBroker:
    """Queues and exchanges shared by every in-process transport of the process."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.queues: dict[str, MemoryQueue] = {}
        self.exchanges: dict[str, str] = {"": "direct"}
        self.bindings: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        self._names = itertools.count(1)

    def route(self, exchange: str, routing_key: str) -> list[MemoryQueue]:
        if exchange == "":
            queue = self.queues.get(routing_key)
            return [] if queue is None else [queue]
        kind = self.exchanges.get(exchange)
        if kind == "direct":
            names = self.bindings.get((exchange, routing_key), set())
        else:  # fanout: every binding; topic: the bindings whose pattern matches
            names = {
                name
                for (source, pattern), bound in self.bindings.items()
                if source == exchange and (kind == "fanout" or topic_match(pattern, routing_key))
                for name in bound
            }
        return [self.queues[name] for name in sorted(names) if name in self.queues]

    def dispatch(self, queue: MemoryQueue) -> None:
        """Hand ``queue``'s messages to its consumers, round-robin, within prefetch."""
        now = time.monotonic()
        while queue.messages and queue.consumers:
            for _ in range(len(queue.consumers)):
                consumer = queue.consumers.pop(0)
                queue.consumers.append(consumer)
                if consumer.transport._has_room():
                    break
            else:
                return  # every consumer is full
            message = queue.messages.popleft()
            if message.expires and message.expires <= now:
                continue
            consumer.transport._deliver(consumer, queue.name, message)

    def remove_consumer(self, consumer: Subscription) -> None:
        """Take ``consumer`` off its queue, deleting an auto-delete queue left without any."""
        queue = self.queues.get(consumer.queue)
        if queue is None:
            return
        if consumer in queue.consumers:
            queue.consumers.remove(consumer)
        if queue.auto_delete and queue.had_consumer and not queue.consumers:
            self.delete_queue(queue)

    def delete_queue(self, queue: MemoryQueue) -> None:
        self.queues.pop(queue.name, None)
        for names in self.bindings.values():
            names.discard(queue.name)

    def server_name(self) -> str:
        return f"amq.gen-{next(self._names)}"


#: The broker of ``memory://`` URLs.
BROKER = InProcessBroker()


#: Queue arguments the in-process broker cannot honour (others, such as the queue type,
#: change nothing it does).
UNSUPPORTED = frozenset({"x-message-ttl", "x-dead-letter-exchange", "x-expires"})


def topic_match(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is one word, ``#`` zero or more."""
    return _match(pattern.split("."), key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])
