"""The conformance kit's exchanges (``conformance/exchanges.json``), run against a real worker.

Each request is published raw, exactly as the file gives it, to a worker serving the
reference task ``fib``; each reply is checked against the file: properties, typed
headers and body. Another implementation runs the same file against its own worker.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection

from taskrpc import App
from taskrpc.fibonacci import fib

pytestmark = pytest.mark.broker

KIT = Path(__file__).resolve().parents[2] / "conformance"
KIT_EXCHANGES = json.loads((KIT / "exchanges.json").read_text())
EXCHANGES = KIT_EXCHANGES["exchanges"]

#: AMQP field types the vectors use, and the Python type py-amqp reads (and writes) them as.
FIELD_TYPES = {"S": str, "I": int, "d": float, "t": bool}


@pytest.fixture(scope="module")
def served(broker_url: str):
    """A worker serving the reference task on a fresh queue; a raw channel and reply queue."""
    queue = f"taskrpc.test.conformance.{uuid.uuid4().hex[:8]}"
    assert KIT_EXCHANGES["worker"]["accepts"] == ["application/json", "application/x-msgpack"]
    app = App(
        "conformance",
        broker_url=broker_url,
        default_queue=queue,
        accept_requests=("json", "msgpack"),
    )
    app.task(name="fib")(fib.fn)
    from taskrpc.worker import Worker

    worker = Worker(app, pool="threads", concurrency=2)
    worker.start_in_thread()
    connection = Connection(broker_url, connect_timeout=5)
    connection.connect()
    channel = connection.connection.channel()
    reply_to = f"taskrpc.test.conformance-reply.{uuid.uuid4().hex}"
    channel.queue_declare(reply_to, exclusive=True, auto_delete=True)
    yield queue, channel, reply_to
    worker.stop()
    channel.queue_delete(queue)
    connection.release()
    app.close()


def value_of(value: Any, now: float) -> Any:
    if isinstance(value, str) and value.startswith("$now"):
        return now + float(value[4:])
    return value


def publish(channel: Any, request: dict[str, Any], queue: str, reply_to: str) -> None:
    import amqp

    now = time.time()
    headers = {}
    for name, kind, raw in request["headers"]:
        value = value_of(raw, now)
        if kind == "I":
            value = int(value)
            assert -(2**31) <= value < 2**31
        assert type(value) is FIELD_TYPES[kind], (name, kind, value)
        headers[name] = value
    properties = {
        key: reply_to if value == "$reply_to" else value
        for key, value in request["properties"].items()
    }
    body = request["body"]
    data = base64.b64decode(body["base64"]) if "base64" in body else body["utf8"].encode()
    routing_key = queue if request["routing_key"] == "$queue" else request["routing_key"]
    message = amqp.Message(data, application_headers=headers, **properties)
    channel.basic_publish(message, exchange=request["exchange"], routing_key=routing_key)


def receive(channel: Any, reply_to: str) -> Any:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        message = channel.basic_get(reply_to, no_ack=True)
        if message is not None:
            return message
        time.sleep(0.01)
    raise AssertionError("no reply")


def decode(body: bytes, fmt: str) -> Any:
    if fmt == "json":
        return json.loads(body)
    import msgpack

    def ext(code: int, data: bytes) -> int:
        assert code == 1, f"unexpected extension type {code}"
        return int.from_bytes(data, "big", signed=True)

    return msgpack.unpackb(body, raw=False, ext_hook=ext)


def assert_subset(expected: Any, actual: Any, path: str = "body") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            assert_subset(value, actual[key], f"{path}.{key}")
    else:
        assert actual == expected and type(actual) is type(expected), f"{path}: {actual!r}"


def check_reply(message: Any, expected: dict[str, Any]) -> None:
    for key, value in expected["properties"].items():
        assert message.properties.get(key) == value, (key, message.properties)
    headers = message.properties.get("application_headers") or {}
    for name, kind, value in expected["headers"]:
        assert type(headers.get(name)) is FIELD_TYPES[kind] and headers[name] == value, headers
    body = expected["body"]
    if "base64" in body:
        assert message.body == base64.b64decode(body["base64"])
    decoded = decode(message.body, body["format"])
    if body["match"] == "exact":
        assert decoded == body["value"]
    else:
        assert_subset(body["value"], decoded)


@pytest.mark.parametrize("exchange", EXCHANGES, ids=[e["name"] for e in EXCHANGES])
def test_the_worker_answers_as_the_kit_says(served, exchange):
    queue, channel, reply_to = served
    for step in exchange["steps"]:
        publish(channel, step["request"], queue, reply_to)
        check_reply(receive(channel, reply_to), step["reply"])
