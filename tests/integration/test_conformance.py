"""The conformance kit's exchanges (``conformance/exchanges.json``), run against a real worker.

Each request is published raw, exactly as the file gives it, to a worker serving the
reference task ``fib``; each reply is checked against the file: properties, typed
headers and body. Then again with signing on: every request signed, at publish time,
with the key of ``conformance/signing.json``, and every reply's signature verified.
Another implementation runs the same files against its own worker.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import amqp
import pytest
from kombu import Connection

from taskrpc import App
from taskrpc.fibonacci import fib
from taskrpc.security.signing import Envelope, Signer, SigningKey
from taskrpc.worker import Worker

pytestmark = pytest.mark.broker

KIT = Path(__file__).resolve().parents[2] / "conformance"
KIT_EXCHANGES = json.loads((KIT / "exchanges.json").read_text())
EXCHANGES = KIT_EXCHANGES["exchanges"]
KEY = json.loads((KIT / "signing.json").read_text())["key"]

#: AMQP field types the vectors use, and the Python type py-amqp reads (and writes) them as.
FIELD_TYPES = {"S": str, "I": int, "d": float, "t": bool}


@dataclasses.dataclass
class Served:
    queue: str
    channel: Any
    reply_to: str
    signer: Signer | None


@pytest.fixture(scope="module", params=["unsigned", "signed"])
def served(request: pytest.FixtureRequest, broker_url: str) -> Iterator[Served]:
    """A worker serving the reference task on a fresh queue; a raw channel and reply queue."""
    queue = f"taskrpc.test.conformance.{uuid.uuid4().hex[:8]}"
    assert KIT_EXCHANGES["worker"]["accepts"] == ["application/json", "application/x-msgpack"]
    signed = request.param == "signed"
    keys = (f"{KEY['id']}:{KEY['secret']}",) if signed else ()
    app = App(
        "conformance",
        broker_url=broker_url,
        default_queue=queue,
        accept_requests=("json", "msgpack"),
        signing_keys=keys,
    )
    app.task(name="fib")(fib.fn)
    worker = Worker(app, pool="threads", concurrency=2)
    worker.start_in_thread()
    connection = Connection(broker_url, connect_timeout=5)
    connection.connect()
    channel = connection.connection.channel()
    reply_to = f"taskrpc.test.conformance-reply.{uuid.uuid4().hex}"
    channel.queue_declare(reply_to, exclusive=True, auto_delete=True)
    signer = Signer([SigningKey(KEY["id"], KEY["secret"].encode())], window=60) if signed else None
    try:
        yield Served(queue, channel, reply_to, signer)
    finally:
        worker.stop()
        channel.queue_delete(queue)
        connection.release()
        app.close()


def value_of(value: Any, now: float) -> Any:
    if isinstance(value, str) and value.startswith("$now"):
        return now + float(value[4:])
    return value


def typed_headers(listed: list[list[Any]], now: float) -> dict[str, Any]:
    headers = {}
    for name, kind, raw in listed:
        value = value_of(raw, now)
        if kind == "I":
            value = int(value)
            assert -(2**31) <= value < 2**31
        assert type(value) is FIELD_TYPES[kind], (name, kind, value)
        headers[name] = value
    return headers


def publish(served: Served, request: dict[str, Any]) -> None:
    headers = typed_headers(request["headers"], time.time())
    properties = {
        key: served.reply_to if value == "$reply_to" else value
        for key, value in request["properties"].items()
    }
    body = request["body"]
    data = base64.b64decode(body["base64"]) if "base64" in body else body["utf8"].encode()
    routing_key = served.queue if request["routing_key"] == "$queue" else request["routing_key"]
    if served.signer is not None:
        envelope = Envelope(
            "request",
            properties.get("content_type"),
            properties.get("content_encoding"),
            properties.get("correlation_id") or properties.get("message_id"),  # the request id
            properties.get("reply_to"),
            routing_key,
            headers,
        )
        headers.update(served.signer.sign(data, envelope))
    message = amqp.Message(data, application_headers=headers, **properties)
    served.channel.basic_publish(message, exchange=request["exchange"], routing_key=routing_key)


def receive(served: Served) -> Any:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        message = served.channel.basic_get(served.reply_to, no_ack=True)
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


def check_reply(served: Served, message: Any, expected: dict[str, Any]) -> None:
    properties = message.properties
    for key, value in expected["properties"].items():
        assert properties.get(key) == value, (key, properties)
    headers = properties.get("application_headers") or {}
    for name, kind, value in expected["headers"]:
        assert type(headers.get(name)) is FIELD_TYPES[kind] and headers[name] == value, headers
    if served.signer is not None and not expected.get("verified_request", True):
        assert "taskrpc-signature" not in headers  # a refusal before verification: unsigned
    elif served.signer is not None:  # signed with the request's key, over what it says
        envelope = Envelope(
            "reply",
            properties.get("content_type"),
            properties.get("content_encoding"),
            properties.get("correlation_id"),
            None,
            served.reply_to,
            headers,
        )
        served.signer.verify(message.body, envelope)
        assert headers["taskrpc-key-id"] == KEY["id"]
    body = expected["body"]
    if "base64" in body:
        assert message.body == base64.b64decode(body["base64"])
    decoded = decode(message.body, body["format"])
    if body["match"] == "exact":
        assert decoded == body["value"]
    else:
        assert_subset(body["value"], decoded)


@pytest.mark.parametrize("exchange", EXCHANGES, ids=[e["name"] for e in EXCHANGES])
def test_the_worker_answers_as_the_kit_says(served: Served, exchange: dict[str, Any]) -> None:
    for step in exchange["steps"]:
        publish(served, step["request"])
        check_reply(served, receive(served), step["reply"])


def test_an_unsigned_request_is_answered_only_when_signing_is_off(served: Served) -> None:
    request = EXCHANGES[0]["steps"][0]["request"]
    signer, served.signer = served.signer, None
    try:
        publish(served, {**request, "properties": {**request["properties"], "correlation_id": "u"}})
    finally:
        served.signer = signer
    reply = decode(receive(served).body, "json")
    if signer is None:
        assert reply["result"] == 55
    else:
        assert (reply["error"]["code"], reply["error"]["type"]) == ("bad_request", "BadSignature")
