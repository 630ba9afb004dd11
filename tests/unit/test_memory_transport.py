"""The in-process transport keeps the AMQP semantics the client and worker rely on."""

from __future__ import annotations

import threading
import time

import pytest

from taskrpc.transport import Delivery, Returned
from taskrpc.transport.memory import ChannelError, InProcessBroker, InProcessTransport


@pytest.fixture
def broker() -> InProcessBroker:
    return InProcessBroker()  # a private one: no other test's queues


def consumer(broker: InProcessBroker, queue: str, prefetch: int = 0, **options):
    transport = InProcessTransport(broker)
    transport.qos(prefetch)
    got: list[Delivery] = []
    transport.consume(queue, got.append, **options)
    return transport, got


def test_direct_routing_round_robin_and_prefetch(broker):
    producer = InProcessTransport(broker)
    producer.declare_exchange("ex")
    producer.declare_queue("q")
    producer.bind_queue("q", "ex", "q")
    first, got1 = consumer(broker, "q", prefetch=2)
    second, got2 = consumer(broker, "q", prefetch=2)
    for n in range(6):
        producer.publish(str(n).encode(), {"correlation_id": str(n)}, "ex", "q")
    first.drain()
    second.drain()
    assert [d.body for d in got1] == [b"0", b"2"] and [d.body for d in got2] == [b"1", b"3"]
    first.ack(got1[1].delivery_tag, multiple=True)  # room for two more
    first.drain()
    assert [d.body for d in got1] == [b"0", b"2", b"4", b"5"]


def test_reject_requeues_as_redelivered_and_close_requeues_the_unacked(broker):
    producer = InProcessTransport(broker)
    producer.declare_queue("q")
    first, got1 = consumer(broker, "q", prefetch=1)
    producer.publish(b"a", {}, "", "q")
    first.drain()
    first.reject(got1[0].delivery_tag, requeue=True)
    first.drain()
    assert [(d.body, d.redelivered) for d in got1] == [(b"a", False), (b"a", True)]
    first.close()  # unacked: back to the queue for the next consumer
    second, got2 = consumer(broker, "q")
    second.drain()
    assert [(d.body, d.redelivered) for d in got2] == [(b"a", True)]
    second.reject(got2[0].delivery_tag, requeue=False)  # dropped
    third, got3 = consumer(broker, "q")
    third.drain()
    assert got3 == []


def test_confirms_returns_and_exclusive_reply_queues(broker):
    client = InProcessTransport(broker)
    confirms: list[tuple[int, bool, bool]] = []
    returns: list[Returned] = []
    client.on_confirm = lambda *c: confirms.append(c)
    client.on_return = returns.append
    client.confirm_select()
    name = client.declare_queue("", exclusive=True, auto_delete=True, durable=False)
    assert client.publish(b"x", {"correlation_id": "c"}, "", "nowhere", mandatory=True) == 1
    client.drain()
    assert [(r.reply_code, r.properties["correlation_id"]) for r in returns] == [(312, "c")]
    assert confirms == [(1, False, True)]
    with pytest.raises(ChannelError):
        InProcessTransport(broker).consume(name, lambda d: None)  # someone else's
    client.close()
    assert name not in broker.queues


def test_a_publish_wakes_a_waiting_consumer_at_once(broker):
    producer = InProcessTransport(broker)
    producer.declare_queue("q")
    waiting, got = consumer(broker, "q")
    took: list[float] = []

    def wait() -> None:
        started = time.monotonic()
        while not got:
            waiting.wait(5.0)
        took.append(time.monotonic() - started)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.05)
    producer.publish(b"now", {}, "", "q")
    thread.join(10)
    assert took and took[0] < 1.0  # woken, not timed out


def test_what_the_in_process_broker_cannot_do_it_refuses(broker):
    transport = InProcessTransport(broker)
    with pytest.raises(NotImplementedError):
        transport.declare_queue("ttl", arguments={"x-message-ttl": 5})
    with pytest.raises(NotImplementedError):
        transport.bind_exchange("a", "b", "#")
    with pytest.raises(ChannelError):
        transport.declare_exchange("h", "headers")
    transport.close()
    with pytest.raises(ConnectionError):  # recoverable: a client reconnects
        transport.publish(b"", {}, "", "q")
