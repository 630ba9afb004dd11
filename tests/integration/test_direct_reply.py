"""RabbitMQ direct reply-to, the option beside the callback queue."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from taskrpc import App, InvalidArguments, Settings
from taskrpc.messages import HEADER_PROTOCOL, HEADER_TASK
from taskrpc.security.signing import Envelope, Signer, SigningKey
from taskrpc.transport import Delivery, connect
from taskrpc.transport.direct_reply import DIRECT_REPLY_TO, learn_reply_to

pytestmark = pytest.mark.broker


@pytest.fixture
def direct_app(broker_url, unique_queue, start_worker):
    app = App("direct", broker_url=broker_url, default_queue=unique_queue, direct_reply_to=True)

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    start_worker(app, pool="threads", concurrency=4)
    yield app
    app.close()


def test_calls_are_answered_through_direct_reply_to(direct_app):
    add = direct_app.tasks["add"]
    assert add.delay(2, 3).get(timeout=10) == 5
    assert direct_app.client._listener.reply_to.startswith(DIRECT_REPLY_TO + ".")
    with pytest.raises(InvalidArguments):
        add.delay("x", 1).get(timeout=10)


def test_many_calls_from_several_threads(direct_app):
    add = direct_app.tasks["add"]

    def burst(offset: int) -> list[int]:
        return [h.get(timeout=20) for h in [add.delay(offset, i) for i in range(100)]]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(burst, range(0, 4000, 1000)))
    assert results == [[o + i for i in range(100)] for o in range(0, 4000, 1000)]
    assert direct_app.client.unknown_replies == 0


def test_the_asyncio_client_uses_it_too(direct_app):
    add = direct_app.tasks["add"]

    async def main():
        return await asyncio.gather(*(add.call_async(i, 1) for i in range(100)))

    assert asyncio.run(main()) == [i + 1 for i in range(100)]


KEY = "k1:" + "s" * 32


@pytest.fixture
def signed_apps(broker_url, unique_queue, start_worker):
    """A worker that requires signatures, and a signing client using direct reply-to."""
    options = {"broker_url": broker_url, "default_queue": unique_queue, "signing_keys": (KEY,)}
    served = App("signed-worker", **options)

    @served.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    start_worker(served, pool="threads", concurrency=2)
    client = App("signed-client", direct_reply_to=True, **options)
    yield served, client
    client.close()
    served.close()


def test_signed_calls_work_with_direct_reply_to(signed_apps):
    _, client = signed_apps
    assert client.send_task("add", [2, 3]).get(timeout=10) == 5
    # The client signed, and published, the full name the broker gave its channel.
    name = client.client._listener.reply_to
    assert name.startswith(DIRECT_REPLY_TO + ".") and len(name) > len(DIRECT_REPLY_TO) + 20
    with pytest.raises(InvalidArguments):
        client.send_task("add", ["x", 1]).get(timeout=10)


def _direct_caller(broker_url):
    """A bare transport consuming direct reply-to: (transport, transport, name, replies)."""
    transport = connect(Settings(broker_url=broker_url))
    replies: list[Delivery] = []
    transport.consume(DIRECT_REPLY_TO, replies.append, no_ack=True)
    return transport, transport, learn_reply_to(transport), replies


def _signed_publish(channel, queue, *, signed_reply_to, published_reply_to, request_id):
    signer = Signer([SigningKey.parse(KEY)], window=60)
    body = b'{"args":[2,3],"kwargs":{}}'
    headers = {HEADER_PROTOCOL: 1, HEADER_TASK: "add"}
    envelope = Envelope(
        "request", "application/json", "binary", request_id, signed_reply_to, queue, headers
    )
    headers = {**headers, **signer.sign(body, envelope)}
    properties = {
        "content_type": "application/json",
        "content_encoding": "binary",
        "correlation_id": request_id,
        "reply_to": published_reply_to,
        "application_headers": headers,
    }
    channel.publish(body, properties, "taskrpc", queue)


def _reply_of(connection, replies):
    deadline = time.monotonic() + 10
    while not replies and time.monotonic() < deadline:
        connection.wait(0.5)
    assert replies, "no reply"
    return json.loads(replies.pop().body)


@pytest.mark.parametrize("case", ["literal-name-signed", "another-channel-named"])
def test_the_signature_still_binds_the_reply_address(signed_apps, broker_url, unique_queue, case):
    """Nothing is left out of the signature: a request signed for the literal pseudo-queue
    name (which the broker rewrites) or redirected to another channel is refused."""
    connection, channel, name, replies = _direct_caller(broker_url)
    other = _direct_caller(broker_url)
    try:
        if case == "literal-name-signed":
            signed, published, answered = DIRECT_REPLY_TO, DIRECT_REPLY_TO, (connection, replies)
        else:  # a copy of our signed request, redirected to the other channel
            signed, published, answered = name, other[2], (other[0], other[3])
        publish = functools.partial(_signed_publish, channel, unique_queue)
        publish(signed_reply_to=signed, published_reply_to=published, request_id="1")
        error = _reply_of(*answered)["error"]
        assert (error["code"], error["type"]) == ("bad_request", "BadSignature")
        # Signed and published with our own full name, the same request runs.
        publish(signed_reply_to=name, published_reply_to=name, request_id="2")
        assert _reply_of(connection, replies)["result"] == 5
    finally:
        connection.close()
        other[0].close()
