"""Bare mode: ``taskrpc worker taskrpc.fibonacci:app`` answers the RabbitMQ tutorial's client.

The client below is the tutorial's RPC client (python-pika) as published, except that it
waits at most a few seconds and takes the broker URL: body ``str(n)`` to the default
exchange, routing key ``rpc_queue``, properties ``reply_to`` and ``correlation_id`` only
(no content type, no headers); the reply body is ``str(fib(n))``. Bad input is answered
with an ``error: ...`` body, and the worker keeps serving.
"""

from __future__ import annotations

import pickle
import time
import urllib.parse
import uuid
from collections.abc import Iterator

import pika
import pydantic_core
import pytest

from taskrpc.fibonacci import MAX_N, TUTORIAL_QUEUE, fib
from taskrpc.testing.broker import queue_state

from .test_bad_input import CreatesFile

pytestmark = pytest.mark.broker

WORKER_APP = "taskrpc.fibonacci:app"
#: Created if the pickle sent below were ever unpickled.
PICKLE_MARKER = f"/tmp/taskrpc-bare-pickle-{uuid.uuid4().hex}"


def connection_parameters(url: str) -> pika.URLParameters:
    parts = urllib.parse.urlsplit(url)  # kombu's "//" is the vhost "/": pika wants %2F
    return pika.URLParameters(parts._replace(path="/%2F").geturl() if parts.path == "//" else url)


class FibonacciRpcClient:
    """The tutorial's client, with a bounded wait and plain-property options for bad input."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(connection_parameters(url))
        self.channel = self.connection.channel()
        result = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = result.method.queue
        self.channel.basic_consume(
            queue=self.callback_queue, on_message_callback=self.on_response, auto_ack=True
        )
        self.response: bytes | None = None
        self.corr_id: str | None = None

    def on_response(self, ch, method, props, body):
        if self.corr_id == props.correlation_id:
            self.response = body

    def call(self, n: object, **properties: object) -> bytes:
        self.response = None
        self.corr_id = str(uuid.uuid4())
        self.channel.basic_publish(
            exchange="",
            routing_key=TUTORIAL_QUEUE,
            properties=pika.BasicProperties(
                reply_to=self.callback_queue, correlation_id=self.corr_id, **properties
            ),
            body=n if isinstance(n, bytes) else str(n),
        )
        deadline = time.monotonic() + 10
        while self.response is None:
            assert time.monotonic() < deadline, "no reply: the worker stalled"
            self.connection.process_data_events(time_limit=0.5)
        return self.response

    def close(self) -> None:
        self.connection.close()


@pytest.fixture(scope="module")
def tutorial(served) -> Iterator[FibonacciRpcClient]:
    client = FibonacciRpcClient(served.broker_url)
    yield client
    client.close()


@pytest.fixture
def still_answering(tutorial, served) -> Iterator[None]:
    yield
    assert served.alive(), served.output()
    assert int(tutorial.call(30)) == 832040
    ready, consumers = queue_state(served.broker_url, TUTORIAL_QUEUE)
    assert ready == 0 and consumers >= 1


def test_the_worker_consumes_its_default_queue_and_rpc_queue(served):
    assert "rpc_queue" in served.output() and served.queue in served.output()


@pytest.mark.parametrize("n", [0, 1, 2, 10, 30, 90, 1000])
def test_the_tutorial_client_gets_str_of_fib_n(tutorial, n):
    assert int(tutorial.call(n)) == fib(n)  # the tutorial's own int(self.response)


def test_fib_of_max_n_comes_back_exact(tutorial):
    # str() of a 20,899-digit int trips CPython's 4,300-digit guard; pydantic writes it.
    assert tutorial.call(MAX_N) == pydantic_core.to_json(fib(MAX_N))


def test_the_default_queue_still_speaks_taskrpc(served, broker_url):
    from taskrpc import App

    with App("fib-client", broker_url=broker_url, default_queue=served.queue) as app:
        assert app.send_task("fib", [90]).get(timeout=10) == 2880067194370816120


BAD_INPUT = {
    "not-a-number": (b"abc", b"error: invalid_arguments: n: Input should be a valid integer"),
    "negative": (b"-1", b"error: invalid_arguments: n: Input should be greater than or equal"),
    "too-large": (str(MAX_N + 1).encode(), b"error: invalid_arguments: n: Input should be less"),
    "fraction": (b"3.5", b"error: invalid_arguments"),
    "exponent": (b"1e3", b"error: invalid_arguments"),
    "empty": (b"", b"error: invalid_arguments"),
    "whitespace-only": (b"  \n", b"error: invalid_arguments"),
    "invalid-utf8": (b"\xff\xfe30", b"error: bad_request: undecodable body"),
    "huge": (b"9" * (4 * 1024 * 1024 + 1), b"error: bad_request: body of 4194305 bytes"),
    "long-number": (b"9" * 100_000, b"error: invalid_arguments"),
    "json-array": (b"[30]", b"error: invalid_arguments"),
    "pickle": (pickle.dumps(CreatesFile(PICKLE_MARKER)), b"error: bad_request"),
}


@pytest.mark.usefixtures("still_answering")
@pytest.mark.parametrize(("body", "expected"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_gets_an_error_body_and_the_worker_keeps_serving(tutorial, body, expected):
    reply = tutorial.call(body)
    assert reply.startswith(expected), reply


@pytest.mark.usefixtures("still_answering")
def test_a_foreign_content_type_is_refused_on_the_bare_queue(tutorial):
    reply = tutorial.call(30, content_type="application/x-python-serialize")
    assert reply.startswith(b"error: bad_request: undecodable body: content type"), reply


@pytest.mark.usefixtures("still_answering")
def test_an_unknown_content_encoding_is_refused_on_the_bare_queue(tutorial):
    reply = tutorial.call(30, content_encoding="br")
    assert reply.startswith(b"error: bad_request"), reply


@pytest.mark.usefixtures("still_answering")
def test_the_pickle_was_never_unpickled():
    import os

    assert not os.path.exists(PICKLE_MARKER)


@pytest.mark.usefixtures("still_answering")
def test_a_bare_request_without_reply_to_is_run_and_dropped(tutorial, served):
    tutorial.channel.basic_publish(exchange="", routing_key=TUTORIAL_QUEUE, body="25")
    tutorial.channel.basic_publish(exchange="", routing_key=TUTORIAL_QUEUE, body="oops")
