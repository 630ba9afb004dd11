"""The AMQP transport against the real broker: read-ahead loses no frame and saves reads."""

from __future__ import annotations

import time

import pytest
from kombu import Connection, Producer, Queue

from taskrpc.settings import Settings
from taskrpc.transport import Delivery, connect
from taskrpc.transport.amqp import AmqpTransport

pytestmark = pytest.mark.broker


def fill_queue(url: str, name: str, bodies: list[bytes]) -> None:
    """Declare queue ``name`` (auto-deleted) and publish ``bodies`` to it as they are."""
    with Connection(url) as connection:
        channel = connection.channel()
        Queue(name, durable=False, auto_delete=True)(channel).declare()
        producer = Producer(channel, auto_declare=False)
        for body in bodies:
            producer.publish(
                body,
                routing_key=name,
                serializer=None,
                content_type="application/octet-stream",
                content_encoding="binary",
            )


def open_consuming(url: str, name: str) -> tuple[AmqpTransport, list[bytes]]:
    transport = connect(Settings(broker_url=url))
    assert isinstance(transport, AmqpTransport)
    received: list[bytes] = []

    def on_delivery(delivery: Delivery) -> None:
        received.append(delivery.body)

    transport.consume(name, on_delivery, no_ack=True)
    return transport, received


def test_read_ahead_dispatches_every_frame_with_fewer_reads(broker_url, unique_queue):
    bodies = [f"message {i}".encode() for i in range(300)] + [b"x" * 1_000_000]
    fill_queue(broker_url, unique_queue, bodies)
    transport = connect(Settings(broker_url=broker_url))
    try:
        raw = transport._transport
        recv = raw._quick_recv  # the read-ahead the transport installed
        reads = 0

        def counting_recv(size: int) -> bytes:
            nonlocal reads
            reads += 1
            return recv(size)

        raw._quick_recv = counting_recv
        received: list[bytes] = []
        transport.consume(unique_queue, lambda d: received.append(d.body), no_ack=True)
        deadline = time.monotonic() + 15
        while len(received) < len(bodies) and time.monotonic() < deadline:
            transport.wait(1.0)
        assert received == bodies
        assert not transport.buffered()  # nothing left behind unparsed
        # Unbuffered, py-amqp makes three reads per frame and three frames per message.
        assert reads < len(bodies)
    finally:
        transport.close()


def test_draining_stops_at_the_limit_or_once_the_caller_has_what_it_waits_for(
    broker_url, unique_queue
):
    fill_queue(broker_url, unique_queue, [str(i).encode() for i in range(50)])
    transport, received = open_consuming(broker_url, unique_queue)
    try:
        deadline = time.monotonic() + 15
        while not transport.poll(0.5):  # until frames arrive
            assert time.monotonic() < deadline
        transport.drain(limit=5)
        assert 0 < len(received) <= 5
        while len(received) < 20 and time.monotonic() < deadline:
            if transport.poll(0.5):
                transport.drain(until=lambda: len(received) >= 20)
        assert len(received) == 20  # not one more: it stopped as soon as it had them
        while len(received) < 50 and time.monotonic() < deadline:
            transport.wait(1.0)
        assert received == [str(i).encode() for i in range(50)]
    finally:
        transport.close()


def test_heartbeats_are_negotiated_by_default(broker_url):
    transport = connect(Settings(broker_url=broker_url))
    try:
        assert transport.heartbeat == Settings().broker_heartbeat > 0
        assert 0 <= transport.heartbeat_due() < float("inf")
    finally:
        transport.close()
