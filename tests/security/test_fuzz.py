"""Property-based fuzzing of the worker's delivery path and of the reply path.

Hypothesis builds whole deliveries: basic properties from every AMQP field type, short
strings of any bytes (not UTF-8, lone surrogates), header tables with out-of-range
values (timestamps past 2**63, 64-bit integers, decimals), nesting deep and shallow, and
random or almost-JSON bodies. Each delivery py-amqp's own decoder reads is published to
the real broker as hand-made frames and consumed by a real worker process, which must
settle it and keep answering good calls; each reply-shaped one is fed to the client's
reply decoder, which may only raise taskrpc's typed errors. Example counts are bounded
to keep CI time in hand.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest
from amqp.serialization import decode_properties_basic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskrpc import App, TaskRPCError
from taskrpc.client.outcomes import check_reply, read_reply
from taskrpc.client.replies import RawReply

from .rawframes import (
    RawPublisher,
    longstr,
    nested_arrays,
    nested_tables,
    properties,
    shortstr,
    table,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- AMQP field values, as bytes with their type letter --------------------------------

raw_bytes = st.binary(max_size=40)
short_strings = st.one_of(
    st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")),
    raw_bytes.filter(lambda b: len(b) < 256),
    st.just(b"\xed\xa0\x80"),  # a lone surrogate, as UTF-8 bytes
    st.just(b"\xff\xfe"),
)

scalars = st.one_of(
    st.booleans().map(lambda v: b"t" + bytes([v])),
    st.integers(-128, 127).map(lambda v: b"b" + struct.pack(">b", v)),
    st.integers(0, 255).map(lambda v: b"B" + struct.pack(">B", v)),
    st.integers(-(2**15), 2**15 - 1).map(lambda v: b"s" + struct.pack(">h", v)),
    st.integers(0, 2**16 - 1).map(lambda v: b"u" + struct.pack(">H", v)),
    st.integers(-(2**31), 2**31 - 1).map(lambda v: b"I" + struct.pack(">i", v)),
    st.integers(0, 2**32 - 1).map(lambda v: b"i" + struct.pack(">I", v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: b"L" + struct.pack(">q", v)),
    st.integers(0, 2**64 - 1).map(lambda v: b"l" + struct.pack(">Q", v)),
    st.floats(width=32).map(lambda v: b"f" + struct.pack(">f", v)),
    st.floats().map(lambda v: b"d" + struct.pack(">d", v)),
    st.tuples(st.integers(0, 255), st.integers(-(2**31), 2**31 - 1)).map(
        lambda v: b"D" + struct.pack(">Bi", *v)
    ),
    st.integers(0, 2**64 - 1).map(lambda v: b"T" + struct.pack(">Q", v)),  # past 2**63 too
    raw_bytes.map(lambda v: b"S" + longstr(v)),
    raw_bytes.map(lambda v: b"x" + longstr(v)),
    st.just(b"V"),
    st.integers(1, 400).map(nested_arrays),  # deeper: see test_attacks (by delivery tag)
    st.integers(1, 400).map(nested_tables),
)

values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: b"A" + longstr(b"".join(items))),
        st.lists(st.tuples(short_strings, inner), max_size=4).map(lambda f: b"F" + table(f)),
    ),
    max_leaves=12,
)

taskrpc_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [b"taskrpc-task", b"taskrpc-protocol", b"taskrpc-deadline", b"x-other", b"\xff"]
        ),
        st.one_of(values, st.sampled_from([b"S" + longstr(b"echo"), b"I\0\0\0\1"])),
    ),
    max_size=6,
)

bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b'{"args": [1]}',
            b'{"args": [' + b"[" * 500 + b"]" * 500 + b"]}",
            b'{"args": [' + b"9" * 5000 + b"]}",
            b'{"args": [1e400]}',
            b'{"args": ["\xed\xa0\x80"]}',
            b"\x81\xa4args\x91" + b"\x91" * 600 + b"\xc0",
        ]
    ),
)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """``(encoded basic properties, body)``: the content header's property bytes."""
    chosen: dict[str, Any] = {}
    for name in ("content_type", "content_encoding", "correlation_id", "reply_to"):
        if draw(st.booleans()):
            chosen[name] = shortstr(draw(st.one_of(short_strings, st.just(b"application/json"))))
    if draw(st.booleans()):
        chosen["application_headers"] = table(draw(taskrpc_headers))
    # (``expiration`` and ``user_id`` are checked by the broker itself, not fuzzed here.)
    for name in ("message_id", "type", "app_id", "cluster_id"):
        if draw(st.integers(0, 5)) == 0:
            chosen[name] = shortstr(draw(short_strings))
    if draw(st.booleans()):
        chosen["delivery_mode"] = draw(st.integers(0, 255))
        chosen["priority"] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        chosen["timestamp"] = draw(st.integers(0, 2**64 - 1))
    flags, encoded = properties(chosen)
    return struct.pack(">H", flags) + encoded, draw(bodies)


# -- the worker under test ---------------------------------------------------------------


def decoded(encoded: bytes) -> dict[str, Any] | None:
    """What py-amqp makes of the property bytes, or ``None`` where it cannot (the
    transport hands such a delivery to the worker by its tag; see test_attacks)."""
    try:
        props, _ = decode_properties_basic(encoded, 0)
    except (UnicodeDecodeError, OverflowError, ValueError, OSError, RecursionError, struct.error):
        return None
    return props


class Publisher:
    """Hand-made frames to the real broker; a new channel when the broker refuses one."""

    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url
        self.raw = RawPublisher(broker_url)
        self.refused = 0

    def publish(self, queue: str, body: bytes, encoded_properties: bytes) -> None:
        try:
            self.raw.publish(queue, body, {}, raw_properties=encoded_properties)
        except Exception:  # the broker refused the frames and closed the channel
            self.refused += 1
            self.raw.close()
            self.raw = RawPublisher(self.broker_url)


@pytest.fixture(scope="module")
def publisher(served) -> Iterator[Publisher]:
    publisher = Publisher(served.broker_url)
    yield publisher
    publisher.raw.close()


@pytest.mark.broker
@pytest.mark.usefixtures("still_serving")
@FUZZ
@given(delivery=deliveries())
def test_no_delivery_escapes_the_worker_and_good_calls_are_still_answered(
    served, publisher, client_app, delivery
):
    encoded, body = delivery
    if decoded(encoded) is not None:  # py-amqp reads it: the worker's own path must hold
        publisher.publish(served.queue, body, encoded)
    assert served.alive(), served.output()[-3000:]
    assert client_app.send_task("echo", [7]).get(timeout=10) == 7


@settings(max_examples=200, deadline=None)
@given(delivery=deliveries())
def test_py_amqp_decodes_or_raises_one_of_the_errors_the_transport_confines(delivery):
    try:
        decode_properties_basic(delivery[0], 0)
    except (UnicodeDecodeError, OverflowError, ValueError, OSError, RecursionError, struct.error):
        pass


# -- the client's reply path ---------------------------------------------------------------


REPLY_APP = App("fuzz-replies", broker_url="memory://")


@FUZZ
@given(delivery=deliveries(), status=st.sampled_from(["ok", "error", "\udcff"]))
def test_no_reply_escapes_the_client_decoder(delivery, status):
    props = decoded(delivery[0]) or {}
    headers = {**(props.get("application_headers") or {}), "taskrpc-status": status}
    reply = RawReply(
        delivery[1],
        props.get("content_type"),
        props.get("content_encoding"),
        headers,
        props.get("correlation_id"),
        "fuzz.replies",
    )
    try:  # checked (dropped if it fails), then read: typed errors only, nothing else
        read_reply(REPLY_APP, check_reply(REPLY_APP, reply), None)
    except (TaskRPCError, TimeoutError) as exc:
        assert str(exc) is not None
