"""Deliveries py-amqp cannot decode, through the real broker: confined to themselves.

Each is published as raw frames (properties no client library would write), then a good
call must still be answered on the same connection, and nothing may come back to the
queue (it would kill the next worker too).
"""

from __future__ import annotations

import struct
import time

import pytest
from amqp.serialization import dumps

from taskrpc import App, Settings
from taskrpc.testing.broker import queue_state
from taskrpc.transport import connect

from ..unit.fakebroker import frame
from ..unit.test_amqp_transport import HOSTILE as ALL_HOSTILE

#: What RabbitMQ passes on (it refuses a content header whose properties run past its
#: end itself, closing the publisher's connection).
HOSTILE = {name: value for name, value in ALL_HOSTILE.items() if name != "truncated-properties"}

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def raw_publish(transport, exchange: str, routing_key: str, body: bytes, properties: bytes) -> None:
    """Publish ``body`` with ``properties`` (flags and values, any bytes) as they are."""
    channel = transport._channel_id
    method = struct.pack(">HH", 60, 40) + dumps("Bssbb", (0, exchange, routing_key, 0, 0))
    data = frame(1, channel, method)
    data += frame(2, channel, struct.pack(">HHQ", 60, 0, len(body)) + properties)
    for start in range(0, len(body), 131_000):
        data += frame(3, channel, body[start : start + 131_000])
    transport._write(data)


@pytest.fixture
def served(broker_url, unique_queue, start_worker):
    app = App(
        "bad-frames",
        broker_url=broker_url,
        default_queue=unique_queue,
        default_timeout=20,
        max_message_size=1024 * 1024,
    )

    @app.task
    def echo(text: str) -> str:
        time.sleep(0.05 if text == "slow" else 0)
        return text

    worker = start_worker(app, pool="threads", concurrency=2)
    yield app, worker, echo
    app.close()


def test_the_worker_rejects_what_it_cannot_decode_and_keeps_its_connection(
    served, broker_url, unique_queue
):
    app, worker, echo = served
    loop = worker._loop
    publisher = connect(Settings(broker_url=broker_url))
    try:
        for properties in HOSTILE.values():
            raw_publish(publisher, "taskrpc", unique_queue, b'{"args":["x"]}', properties)
        oversized = struct.pack(">H", 1 << 15) + b"\x10application/json"
        raw_publish(publisher, "taskrpc", unique_queue, b"[" * 3_000_000, oversized)
        assert echo.delay("still here").get(timeout=20) == "still here"
    finally:
        publisher.close()
    deadline = time.monotonic() + 10
    while loop.rejections.total < len(HOSTILE) + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"rejected {loop.rejections.counts()}; worker connection kept")
    assert loop.rejections.total == len(HOSTILE) + 1
    assert worker._loop is loop  # never reconnected
    assert queue_state(broker_url, unique_queue) == (0, 1)  # none requeued


def test_a_client_drops_undecodable_replies_and_its_calls_go_on(served, broker_url):
    app, _, echo = served
    pending = [echo.delay("slow") for _ in range(5)]
    client = app.client
    reply_to = client._listener.reply_to
    publisher = connect(Settings(broker_url=broker_url))
    try:
        for properties in HOSTILE.values():
            raw_publish(publisher, "", reply_to, b"{}", properties)
    finally:
        publisher.close()
    assert [call.get(timeout=20) for call in pending] == ["slow"] * 5
    deadline = time.monotonic() + 10
    while client.stats.undecodable < len(HOSTILE) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.stats.undecodable == len(HOSTILE)
    assert echo.delay("after").get(timeout=20) == "after"
