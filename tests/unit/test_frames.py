"""Our hot-path frame encoders write exactly the bytes py-amqp's generic writer would."""

from __future__ import annotations

import datetime
import types

import pytest
from amqp import Message, spec
from amqp.method_framing import frame_writer
from amqp.serialization import dumps
from hypothesis import given
from hypothesis import strategies as st

from taskrpc.transport.frames import encode_ack, encode_publish, encode_table


def py_amqp_bytes(frame_max: int, channel: int, method, format, args, content=None) -> bytes:
    written: list[bytes] = []
    connection = types.SimpleNamespace(frame_max=frame_max, bytes_sent=0)
    transport = types.SimpleNamespace(write=lambda data: written.append(bytes(data)))
    frame_writer(connection, transport)(1, channel, method, dumps(format, args), content)
    return b"".join(written)


def py_amqp_publish(frame_max, channel, exchange, key, mandatory, body, properties) -> bytes:
    message = Message(body, **properties)
    args = (0, exchange, key, mandatory, False)
    return py_amqp_bytes(frame_max, channel, spec.Basic.Publish, "Bssbb", args, message)


REQUEST = {
    "content_type": "application/json",
    "content_encoding": "binary",
    "application_headers": {
        "taskrpc-protocol": 1,
        "taskrpc-task": "taskrpc.fibonacci.fib",
        "taskrpc-deadline": 1795000000.25,
    },
    "delivery_mode": 1,
    "correlation_id": "0123456789abcdef0123456789abcdef",
    "message_id": "0123456789abcdef0123456789abcdef",
    "reply_to": "taskrpc.reply.fedcba9876543210fedcba9876543210",
    "expiration": "30000",
}


@pytest.mark.parametrize("body", [b"", b'{"args":[30],"kwargs":{}}', b"x" * 300_000])
def test_a_request_encodes_as_py_amqp_encodes_it(body):
    ours = encode_publish(7, 131072, "taskrpc", "taskrpc.default", True, body, REQUEST)
    assert ours == py_amqp_publish(131072, 7, "taskrpc", "taskrpc.default", True, body, REQUEST)


def test_every_basic_property_and_unusual_header_values_encode_as_py_amqp_does():
    properties = {
        **REQUEST,
        "application_headers": {
            "big": 2**40,
            "flag": True,
            "nested": {"a": [1, "b", None]},
            "raw": b"\x00\xff",
            "when": datetime.datetime(2026, 11, 27, 12, 0),
        },
        "priority": 3,
        "timestamp": 1795000000,
        "type": "t",
        "user_id": "guest",
        "app_id": "app",
        "cluster_id": "c",
    }
    ours = encode_publish(1, 4096, "", "q", False, b"body", properties)
    assert ours == py_amqp_publish(4096, 1, "", "q", False, b"body", properties)


header_values = st.one_of(
    st.text(max_size=50),
    st.booleans(),
    st.floats(allow_nan=False),
    st.integers(min_value=-(2**31), max_value=2**31),
)


@given(st.dictionaries(st.text(min_size=1, max_size=20), header_values, max_size=6))
def test_header_tables_encode_as_py_amqp_does(table):
    assert encode_table(table) == dumps("F", (table,))


def test_an_ack_encodes_as_py_amqp_encodes_it():
    for tag, multiple in [(1, False), (2**40, True)]:
        expected = py_amqp_bytes(131072, 3, spec.Basic.Ack, "Lb", (tag, multiple))
        assert encode_ack(3, tag, multiple) == expected


def test_an_unknown_property_or_an_overlong_name_is_refused():
    with pytest.raises(ValueError, match="unknown AMQP basic properties"):
        encode_publish(1, 4096, "", "q", False, b"", {"colour": "red"})
    with pytest.raises(ValueError, match="longer than 255"):
        encode_publish(1, 4096, "", "q" * 256, False, b"", {})


# -- reading content headers: our decoder returns what py-amqp's does -------------------

from amqp.serialization import decode_properties_basic  # noqa: E402

from taskrpc.transport.frames import decode_properties, encode_properties  # noqa: E402


def _both(payload: bytes):
    """Each decoder's answer: ``("ok", result)`` or ``("error", None)``."""
    answers = []
    for decode in (decode_properties, decode_properties_basic):
        try:
            properties, end = decode(payload, 0)
        except Exception:
            answers.append(("error", None))
        else:
            answers.append(("ok", (properties, end)) if end <= len(payload) else ("past", None))
    return answers


property_values = {
    "content_type": st.text(max_size=30),
    "correlation_id": st.text(max_size=40),
    "reply_to": st.text(max_size=40),
    "delivery_mode": st.integers(1, 2),
    "priority": st.integers(0, 255),
    "timestamp": st.integers(0, 2**63 - 1),
    "application_headers": st.dictionaries(
        st.text(min_size=1, max_size=20),
        st.one_of(
            header_values,
            st.none(),
            st.binary(max_size=10),
            st.lists(st.integers(-5, 5), max_size=3),
            st.dictionaries(st.text(max_size=5), st.integers(-5, 5), max_size=2),
        ),
        max_size=6,
    ),
}


@given(st.fixed_dictionaries({}, optional=property_values))
def test_properties_decode_as_py_amqp_decodes_them(properties):
    flags, values = encode_properties(properties)
    payload = flags.to_bytes(2, "big") + values
    ours, theirs = _both(payload)
    assert ours == theirs
    assert ours[0] == "ok"


@given(st.binary(max_size=80))
def test_any_bytes_decode_as_py_amqp_decodes_them_or_both_fail(payload):
    ours, theirs = _both(payload)
    assert ours == theirs


def test_every_table_value_type_taskrpc_reads_itself_decodes_as_py_amqp_does():
    table = b"".join(
        bytes([len(key)]) + key + value
        for key, value in [
            (b"t", b"t\x01"), (b"b", b"b\xff"), (b"B", b"B\xff"), (b"s", b"s\xff\xfe"),
            (b"U", b"U\x80\x00"), (b"u", b"u\xff\xff"), (b"I", b"I\xff\xff\xff\xfe"),
            (b"i", b"i\xff\xff\xff\xfe"), (b"L", b"L" + b"\xff" * 8),
            (b"l", b"l" + b"\x80" + b"\0" * 7),
            (b"f", b"f\x3f\x80\x00\x00"), (b"d", b"d" + b"\x3f\xf0" + b"\0" * 6), (b"V", b"V"),
            (b"S", b"S\x00\x00\x00\x02\xff\xfe"), (b"\xff", b"S\x00\x00\x00\x01a"),
        ]
    )  # fmt: skip
    payload = b"\x20\x00" + len(table).to_bytes(4, "big") + table
    ours, theirs = _both(payload)
    assert ours == theirs and ours[0] == "ok"
