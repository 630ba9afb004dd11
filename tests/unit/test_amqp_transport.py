"""The AMQP transport against a scripted broker: frames in, frames out, no RabbitMQ."""

from __future__ import annotations

import struct
import threading
import time
import types
from collections.abc import Iterator

import pytest
from amqp.exceptions import UnexpectedFrame
from amqp.serialization import dumps

from taskrpc.settings import Settings
from taskrpc.transport import BadDelivery, Delivery, compat, connect
from taskrpc.transport.amqp import AmqpTransport
from taskrpc.transport.frames import encode_properties

from .fakebroker import FakeBroker, deliver, frame, method

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def broker() -> Iterator[FakeBroker]:
    fake = FakeBroker()
    yield fake
    fake.close()


def open_transport(broker: FakeBroker, **settings) -> AmqpTransport:
    transport = connect(Settings(broker_url=broker.url, broker_heartbeat=0, **settings))
    assert isinstance(transport, AmqpTransport)
    return transport


def consuming(broker: FakeBroker, **settings):
    """A transport consuming queue ``q``: (transport, consumer tag, deliveries, bad ones)."""
    transport = open_transport(broker, **settings)
    deliveries: list[Delivery] = []
    bad: list[BadDelivery] = []
    transport.on_bad_delivery = bad.append
    tag = transport.consume("q", deliveries.append)
    return transport, tag, deliveries, bad


def wait_until(transport: AmqpTransport, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        transport.wait(0.2)


def test_publish_and_ack_frames_are_what_py_amqp_would_send(broker):
    transport = open_transport(broker)
    transport.confirm_select()
    body = b"x" * 300_000  # three body frames at the default frame_max
    properties = {"content_type": "application/json", "application_headers": {"k": "v"}}
    assert transport.publish(body, properties, "ex", "rk", mandatory=True) == 1
    transport.ack(7, multiple=True)
    transport.reject(9, requeue=False)
    acks = broker.wait_for(lambda _: broker.methods((60, 80)))
    publish = broker.methods((60, 40))[0]
    assert publish == dumps("Bssbb", (0, "ex", "rk", True, False))
    header = next(p for t, _, p in broker.received if t == 2)
    flags, values = encode_properties(properties)
    assert header == struct.pack(">HHQH", 60, 0, len(body), flags) + values
    bodies = [p for t, _, p in broker.received if t == 3]
    assert b"".join(bodies) == body and len(bodies) == 3
    assert acks == [struct.pack(">QB", 7, 1)]
    assert broker.wait_for(lambda _: broker.methods((60, 90))) == [struct.pack(">QB", 9, 0)]
    transport.close()


@pytest.mark.parametrize("read_ahead", [True, False])
def test_a_delivery_split_at_every_byte_boundary_arrives_whole(broker, read_ahead):
    transport, tag, deliveries, bad = consuming(broker)
    if not read_ahead:
        raw = transport._transport
        raw._quick_recv = raw.sock.recv
    properties = {"content_type": "text/plain", "correlation_id": "c-1", "reply_to": "r"}
    stream = deliver(tag, 1, b"hello, world", properties) + frame(8, 0, b"")
    for cut in range(1, len(stream)):
        before = len(deliveries)
        sender = threading.Thread(target=_send_in_two, args=(broker, stream, cut))
        sender.start()
        wait_until(transport, lambda n=before: len(deliveries) > n)
        sender.join()
        got = deliveries[-1]
        assert (got.body, got.properties, got.routing_key) == (b"hello, world", properties, "q")
    assert len(deliveries) == len(stream) - 1 and not bad
    assert not transport.buffered()  # nothing left unparsed
    transport.close()


def _send_in_two(broker: FakeBroker, data: bytes, cut: int) -> None:
    broker.send(data[:cut])
    time.sleep(0.001)  # the first part is read (and parsed as far as it goes) alone
    broker.send(data[cut:])


def _properties(**values) -> bytes:
    flags, encoded = encode_properties(values)
    return struct.pack(">H", flags) + encoded


def _shortstr_property(flag: int, raw: bytes) -> bytes:
    return struct.pack(">H", flag) + bytes([len(raw)]) + raw


def _nested_array(depth: int) -> bytes:
    table = b"A" + struct.pack(">I", 0)
    for _ in range(depth):
        table = b"A" + struct.pack(">I", len(table)) + table
    entry = b"\x01x" + table
    return struct.pack(">H", 1 << 13) + struct.pack(">I", len(entry)) + entry


HOSTILE = {
    "content-type-not-utf8": _shortstr_property(1 << 15, b"\xff"),
    "correlation-id-not-utf8": _shortstr_property(1 << 10, b"\xc3\x28"),
    "timestamp-2**63-in-headers": struct.pack(">H", 1 << 13)
    + struct.pack(">I", 11)
    + b"\x01tT"
    + struct.pack(">Q", 2**63),
    "arrays-5000-deep": _nested_array(5000),
    "truncated-properties": struct.pack(">H", 1 << 15) + b"\x10ab",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_an_undecodable_delivery_becomes_a_bad_delivery_and_the_next_one_arrives(broker, case):
    transport, tag, deliveries, bad = consuming(broker)
    broker.send(deliver(tag, 1, b"poison", raw_properties=HOSTILE[case]))
    broker.send(deliver(tag, 2, b"good", {"content_type": "text/plain"}))
    wait_until(transport, lambda: deliveries)
    assert [d.body for d in deliveries] == [b"good"] and deliveries[0].delivery_tag == 2
    assert [(b.delivery_tag, b.needs_settling) for b in bad] == [(1, True)]
    assert "undecodable properties" in bad[0].reason
    transport.close()


def test_a_routing_key_that_is_not_utf8_is_a_bad_delivery(broker):
    transport, tag, deliveries, bad = consuming(broker)
    broker.send(deliver(tag, 1, b"x", {}, routing_key=b"\xfe\xff"))
    broker.send(deliver(tag, 2, b"good", {}))
    wait_until(transport, lambda: deliveries)
    assert [b.reason for b in bad] == ["its routing key is not UTF-8"]
    transport.close()


def test_by_default_a_bad_delivery_is_rejected_without_requeue(broker):
    transport = open_transport(broker)
    deliveries: list[Delivery] = []
    tag = transport.consume("q", deliveries.append)
    broker.send(deliver(tag, 5, b"x", raw_properties=HOSTILE["content-type-not-utf8"]))
    broker.send(deliver(tag, 6, b"good", {}))
    wait_until(transport, lambda: deliveries)
    assert broker.wait_for(lambda _: broker.methods((60, 90))) == [struct.pack(">QB", 5, 0)]
    transport.close()


def test_a_body_announced_over_the_limit_is_refused_without_being_held(broker):
    transport, tag, deliveries, bad = consuming(broker, max_message_size=1000)
    reader = transport._reader
    held: list[int] = []
    original = reader._on_body

    def watch(partial, payload):
        original(partial, payload)
        held.append(sum(len(part) for part in partial.parts))

    reader._on_body = watch
    body = b"z" * 400_000  # four body frames
    broker.send(deliver(tag, 1, body, {"correlation_id": "big", "reply_to": "caller"}))
    broker.send(deliver(tag, 2, b"small", {}))
    wait_until(transport, lambda: deliveries)
    assert held[:4] == [0, 0, 0, 0]  # every frame dropped as it came
    assert [(b.delivery_tag, b.correlation_id, b.reply_to) for b in bad] == [(1, "big", "caller")]
    assert "400000 bytes announced, over the limit of 1000" in bad[0].reason
    assert bad[0].announced == 400_000 and bad[0].properties["correlation_id"] == "big"
    assert [d.body for d in deliveries] == [b"small"]
    transport.close()


def test_a_no_ack_consumers_bad_delivery_needs_no_settling(broker):
    transport = open_transport(broker)
    bad: list[BadDelivery] = []
    replies: list[Delivery] = []
    transport.on_bad_delivery = bad.append
    tag = transport.consume("replies", replies.append, no_ack=True)
    broker.send(deliver(tag, 1, b"x", raw_properties=HOSTILE["arrays-5000-deep"]))
    broker.send(deliver(tag, 2, b"reply", {"correlation_id": "c"}))
    wait_until(transport, lambda: replies)
    assert [b.needs_settling for b in bad] == [False]
    transport.close()


def test_a_silent_broker_is_declared_dead_within_about_two_heartbeats():
    broker = FakeBroker(heartbeat=1)
    try:
        transport = connect(Settings(broker_url=broker.url, broker_heartbeat=1))
        assert transport.heartbeat == 1
        broker.silent = True
        started = time.monotonic()
        with pytest.raises(transport.recoverable_errors):
            while time.monotonic() - started < 10:
                transport.wait(1.0)
        took = time.monotonic() - started
        print(f"silent broker declared dead after {took:.2f} s (heartbeat 1 s)")
        assert took < 4.0
        broker.silent = False  # let it read what the client sent meanwhile
        assert broker.wait_for(lambda frames: [f for f in frames if f[0] == 8])  # heartbeats
        transport.close()
    finally:
        broker.close()


def test_heartbeats_keep_an_idle_connection_alive():
    live = FakeBroker(heartbeat=1)
    try:
        transport = connect(Settings(broker_url=live.url, broker_heartbeat=1))
        stop = time.monotonic() + 3.5
        while time.monotonic() < stop:  # the broker answers our heartbeats with its own
            live.send(frame(8, 0, b""))
            transport.wait(0.5)
        beats = [f for f in live.received if f[0] == 8]
        assert len(beats) >= 2  # about one per half interval while nothing else is sent
        transport.close()
    finally:
        live.close()


def test_the_compatibility_self_test_turns_read_ahead_off_with_one_warning(
    broker, monkeypatch, caplog
):
    from amqp.transport import TCPTransport

    from taskrpc.transport import compat

    assert compat.self_test() == "" and compat.frames_self_test() == ""
    # A py-amqp whose plain transport no longer keeps a read buffer:
    monkeypatch.setattr(TCPTransport, "_setup_transport", lambda self: None)
    monkeypatch.setattr(compat, "_checked", None)
    assert "no _quick_recv/_read_buffer" in compat.self_test()
    with caplog.at_level("WARNING", logger="taskrpc.transport"):
        assert compat.read_ahead_enabled() is False
        assert compat.read_ahead_enabled() is False  # checked once, warned once
    assert len([r for r in caplog.records if "read-ahead is off" in r.message]) == 1
    monkeypatch.undo()  # the connection itself needs py-amqp's real transport
    monkeypatch.setattr(compat, "_checked", False)
    transport, tag, deliveries, _ = consuming(broker)
    assert transport._read_ahead is False
    broker.send(deliver(tag, 1, b"still works", {}))
    wait_until(transport, lambda: deliveries)
    assert deliveries[0].body == b"still works"
    transport.close()


def test_frames_read_ahead_together_are_each_handled_confirms_included(broker):
    transport, tag, deliveries, bad = consuming(broker)
    transport.confirm_select()
    confirms: list[tuple[int, bool, bool]] = []
    transport.on_confirm = lambda *confirm: confirms.append(confirm)
    stream = b"".join(deliver(tag, n, b"body %d" % n, {"correlation_id": f"c{n}"}) for n in (1, 2))
    stream += method(1, (60, 80), "Lb", (5, True)) + frame(8, 0, b"")  # ack, heartbeat
    stream += method(1, (60, 120), "Lbb", (6, False, False))  # nack
    broker.send(stream)  # one write: read ahead in one or two reads
    wait_until(transport, lambda: len(deliveries) == 2 and len(confirms) == 2)
    assert [d.body for d in deliveries] == [b"body 1", b"body 2"] and not bad
    assert confirms == [(5, True, True), (6, False, False)]
    assert not transport.buffered()
    transport.close()


def test_a_buffered_frame_without_its_end_octet_is_a_connection_error():
    raw = types.SimpleNamespace(_read_buffer=frame(8, 0, b"")[:-1] + b"\x00")
    with pytest.raises(UnexpectedFrame, match="frame_end"):
        compat.next_buffered_frame(raw)
    raw._read_buffer = frame(8, 0, b"")[:-1]  # not whole yet
    assert compat.next_buffered_frame(raw) is None


def test_a_batch_writes_publishes_and_acks_together_and_a_reject_flushes_first(broker):
    transport = open_transport(broker)
    sends: list[bytes] = []
    real_send = transport._writes._send
    transport._writes._send = lambda data: (sends.append(data), real_send(data))
    with transport.batch():
        transport.publish(b"one", {"correlation_id": "1"}, "", "r")
        transport.publish(b"two", {"correlation_id": "2"}, "", "r")
        transport.ack(3)
        assert sends == []
        transport.reject(4, requeue=False)  # py-amqp's frame: after the held ones
        assert len(sends) == 1
        transport.ack(5)
    assert len(sends) == 2
    settled = broker.wait_for(lambda _: len(broker.methods((60, 80))) == 2 or None)
    assert settled
    order = [
        (payload[:4], payload) for kind, _, payload in broker.received if kind == 1
    ]
    names = [head for head, _ in order if head in (b"\x00<\x00(", b"\x00<\x00P", b"\x00<\x00Z")]
    assert names == [b"\x00<\x00(", b"\x00<\x00(", b"\x00<\x00P", b"\x00<\x00Z", b"\x00<\x00P"]
    transport.close()
