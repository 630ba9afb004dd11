"""Raw-kombu ping-pong: the floor the taskrpc benchmark is measured against.

The RabbitMQ tutorial's RPC pattern written directly on kombu, with no taskrpc code:
``serve`` answers ``{"n": int}`` with ``{"result": fib(n)}``; :class:`BaselineClient`
calls it one at a time or with many calls in flight.
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import Any

from kombu import Connection, Consumer, Message, Producer, Queue

#: Called with the number of calls finished so far in a phase (progress reporting).
Tick = Callable[[int], None]

#: Calls between two ticks.
TICK_EVERY = 100


#: The baseline server's prefetch; the taskrpc worker uses the same by default.
PREFETCH = 100


def fib_iter(n: int) -> int:
    """Return the n-th Fibonacci number (fib(0) == 0), iteratively."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def serve(
    url: str,
    queue: str,
    ready: Event | None = None,
    stop: Event | None = None,
    queue_type: str = "classic",
) -> None:
    """Answer ``{"n": int}`` requests on ``queue`` with ``{"result": fib(n)}``.

    ``ready`` / ``stop`` are optional ``multiprocessing.Event`` objects: ``ready``
    is set once consuming, ``stop`` is polled every loop to exit cleanly. With
    ``queue_type="quorum"`` the queue is a (durable) quorum queue, like taskrpc's.
    """
    quorum = queue_type == "quorum"
    with Connection(url) as conn:
        channel = conn.channel()
        q = Queue(
            queue,
            durable=quorum,
            auto_delete=False,
            channel=channel,
            queue_arguments={"x-queue-type": "quorum"} if quorum else None,
        )
        q.declare()
        # The callback only buffers: py-amqp's basic_publish calls
        # drain_events(timeout=0), so publishing a reply inside the callback
        # would re-enter it for the next prefetched message and, with
        # prefetch 100, recurse until RecursionError.
        pending: collections.deque[Message] = collections.deque()
        consumer = Consumer(
            channel,
            queues=[q],
            no_ack=False,
            auto_declare=False,
            callbacks=[lambda _body, msg: pending.append(msg)],
        )
        try:
            channel.basic_qos(prefetch_size=0, prefetch_count=PREFETCH, a_global=False)
            producer = Producer(channel, serializer="json", auto_declare=False)
            with consumer:
                if ready is not None:
                    ready.set()
                while stop is None or not stop.is_set():
                    while pending:
                        msg = pending.popleft()
                        props = msg.properties
                        producer.publish(
                            {"result": fib_iter(int(msg.payload["n"]))},
                            routing_key=props["reply_to"],
                            correlation_id=props["correlation_id"],
                            retry=False,
                        )
                        msg.ack()
                    try:
                        # Short timeout so a set ``stop`` is noticed promptly.
                        conn.drain_events(timeout=0.2)
                    except TimeoutError:  # == socket.timeout since Python 3.10
                        pass
        finally:
            q.delete()


class BaselineClient:
    """Tutorial-style RPC client: one connection, one exclusive reply queue."""

    def __init__(self, url: str, queue: str, timeout: float = 10.0) -> None:
        self.queue = queue
        self.timeout = timeout  # max wait for any reply, else TimeoutError
        self._conn = Connection(url)
        self._channel = self._conn.channel()
        # Server-named, exclusive, auto-delete: vanishes with the connection.
        self._reply_q = Queue(
            "", exclusive=True, auto_delete=True, durable=False, channel=self._channel
        )
        self._reply_q.declare()
        self._producer = Producer(self._channel, serializer="json", auto_declare=False)
        self._consumer = Consumer(
            self._channel,
            queues=[self._reply_q],
            no_ack=True,
            auto_declare=False,
            callbacks=[self._on_reply],
        )
        self._consumer.consume()
        # correlation_id -> (arrival time, result). The callback may also run
        # inside basic_publish, so it only records and never publishes.
        self._replies: dict[str, tuple[float, int]] = {}

    def _on_reply(self, body: Any, message: Message) -> None:
        corr = str(message.properties.get("correlation_id"))
        self._replies[corr] = (time.perf_counter(), body["result"])

    def _publish(self, n: int) -> str:
        corr = uuid.uuid4().hex
        self._producer.publish(
            {"n": n},
            routing_key=self.queue,
            retry=False,
            reply_to=self._reply_q.name,
            correlation_id=corr,
        )
        return corr

    def call(self, n: int) -> int:
        """Send one request and block until its reply arrives."""
        corr = self._publish(n)
        while corr not in self._replies:
            self._conn.drain_events(timeout=self.timeout)
        return self._replies.pop(corr)[1]

    def pipelined(
        self, total: int, in_flight: int, n: int = 30, tick: Tick | None = None
    ) -> list[float]:
        """Run ``total`` calls of ``fib(n)`` keeping ``in_flight`` outstanding.

        Returns:
            Each call's latency in seconds, from just before publishing to the reply's arrival.
        """
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        sent = 0
        next_tick = TICK_EVERY
        while len(latencies) < total:
            while sent < total and len(sent_at) < in_flight:
                t0 = time.perf_counter()
                sent_at[self._publish(n)] = t0
                sent += 1
            if not self._replies:
                self._conn.drain_events(timeout=self.timeout)
            for corr, (t1, _result) in self._replies.items():
                if corr in sent_at:  # ignore stray replies to earlier calls
                    latencies.append(t1 - sent_at.pop(corr))
            self._replies.clear()
            if tick is not None and len(latencies) >= next_tick:
                tick(len(latencies))
                next_tick += TICK_EVERY
        return latencies

    def close(self) -> None:
        """Close the connection (the reply queue is auto-deleted with it)."""
        self._conn.release()

    def __enter__(self) -> BaselineClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
