"""The event pump against the real broker: read-ahead loses no frame and saves reads."""

from __future__ import annotations

import time

import pytest
from kombu import Connection, Consumer, Producer, Queue

from taskrpc.transport import EventPump

pytestmark = pytest.mark.broker


def fill_queue(connection: Connection, name: str, bodies: list[bytes]) -> tuple[object, Queue]:
    """Declare queue ``name`` and publish ``bodies`` to it as they are; ``(channel, queue)``."""
    channel = connection.channel()
    queue = Queue(name, durable=False, auto_delete=True)(channel)
    queue.declare()
    producer = Producer(channel, auto_declare=False)
    for body in bodies:
        producer.publish(
            body,
            routing_key=name,
            serializer=None,
            content_type="application/octet-stream",
            content_encoding="binary",
        )
    return channel, queue


def consume_into(channel: object, queue: Queue) -> list[bytes]:
    """Consume ``queue``; the returned list fills with bodies as the pump dispatches them."""
    received: list[bytes] = []
    Consumer(channel, [queue], no_ack=True, on_message=lambda m: received.append(m.body)).consume()
    return received


def test_read_ahead_dispatches_every_frame_with_fewer_reads(broker_url, unique_queue):
    bodies = [f"message {i}".encode() for i in range(300)] + [b"x" * 1_000_000]
    with Connection(broker_url) as connection:
        channel, queue = fill_queue(connection, unique_queue, bodies)
        pump = EventPump(connection)
        reads = 0
        recv = pump._transport._quick_recv  # the read-ahead the pump installed

        def counting_recv(size: int) -> bytes:
            nonlocal reads
            reads += 1
            return recv(size)

        pump._transport._quick_recv = counting_recv
        received = consume_into(channel, queue)
        deadline = time.monotonic() + 15
        while len(received) < len(bodies) and time.monotonic() < deadline:
            pump.wait(1.0)
        assert received == bodies
        assert not pump.buffered()  # nothing left behind unparsed
        # Unbuffered, py-amqp makes three reads per frame and three frames per message.
        assert reads < len(bodies)


def test_draining_stops_at_the_limit_or_once_the_caller_has_what_it_waits_for(
    broker_url, unique_queue
):
    with Connection(broker_url) as connection:
        channel, queue = fill_queue(connection, unique_queue, [str(i).encode() for i in range(50)])
        pump = EventPump(connection)
        received = consume_into(channel, queue)
        deadline = time.monotonic() + 15
        while not pump.poll(0.5):  # until frames arrive
            assert time.monotonic() < deadline
        pump.drain_ready(limit=5)
        assert 0 < len(received) <= 5
        while len(received) < 20 and time.monotonic() < deadline:
            if pump.poll(0.5):
                pump.drain_ready(until=lambda: len(received) >= 20)
        assert len(received) == 20  # not one more: it stopped as soon as it had them
        while len(received) < 50 and time.monotonic() < deadline:
            pump.wait(1.0)
        assert received == [str(i).encode() for i in range(50)]
