"""One real worker process per test module, raw publishes, and the checks every case makes.

A module may set ``WORKER_ENV`` (extra ``TASKRPC_*`` variables of its worker),
``WORKER_APP`` (the ``module:app`` it serves) and ``CLIENT_OPTIONS`` (settings of the
client app). Every bad input is published raw, exactly as written, with the client's
reply queue as ``reply_to`` so that the reply is read (and typed) by taskrpc's client.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Queue

from taskrpc import App
from taskrpc.client.replies import PendingCall
from taskrpc.client.result import AsyncResult
from taskrpc.testing.broker import queue_state, wait_for_consumers
from taskrpc.testing.plugin import delete_queues
from tests.security.apps import BARE_QUEUE

ROOT = Path(__file__).resolve().parents[2]

#: Two shared HMAC keys, current first; tests sign with them and with others.
KEY_NEW = "k2:" + "n" * 32
KEY_OLD = "k1:" + "o" * 32


class ServedWorker:
    """A ``taskrpc worker`` subprocess serving one queue, its log in a file."""

    def __init__(self, broker_url: str, queue: str, app: str, env: dict[str, str], log: Path):
        self.broker_url, self.queue, self.log = broker_url, queue, log
        full_env = {
            **os.environ,
            "TASKRPC_BROKER_URL": broker_url,
            "TASKRPC_DEFAULT_QUEUE": queue,
            "PYTHONPATH": str(ROOT),
            **env,
        }
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "taskrpc", "worker", app, "-l", "info", "-c", "2"],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        try:
            wait_for_consumers(broker_url, queue, timeout=20)
        except TimeoutError:
            self.stop()
            pytest.fail(f"worker did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class RawCaller:
    """Publishes raw requests and reads their replies through a taskrpc client."""

    def __init__(self, app: App, broker_url: str) -> None:
        self.app = app
        self.connection = Connection(broker_url, connect_timeout=5)
        self.channel = self.connection.channel()
        self.published = 0

    def reply_to(self) -> str:
        return self.app.client._listener.wait_ready(10)

    def publish(
        self,
        body: bytes,
        *,
        routing_key: str | None = None,
        content_type: str | None = "application/json",
        content_encoding: str | None = "binary",
        headers: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
    ) -> None:
        message = self.channel.prepare_message(
            body,
            content_type=content_type,
            content_encoding=content_encoding,
            headers=headers or {},
            properties=properties or {},
        )
        self.channel.basic_publish(message, "", routing_key or self.app.settings.default_queue)
        self.published += 1

    def call(self, body: bytes, *, timeout: float = 10, **options: Any) -> AsyncResult[Any]:
        """Publish with a fresh correlation id and our reply queue; return the reply handle."""
        call = PendingCall(uuid.uuid4().hex, "raw", time.monotonic() + timeout)
        self.app.client._router.add(call)
        properties = {"correlation_id": call.id, "reply_to": self.reply_to()}
        properties.update(options.pop("properties", None) or {})
        self.publish(body, properties=properties, **options)
        result: AsyncResult[Any] = AsyncResult(self.app, call, None)
        result._keep_alive = call  # type: ignore[attr-defined] # the router holds calls weakly
        return result

    def bare_call(self, body: bytes, *, routing_key: str, timeout: float = 10, **options: Any):
        """Publish without taskrpc headers; return the raw reply message."""
        channel = self.connection.channel()
        try:
            queue = Queue(f"taskrpc.test.bare-reply.{uuid.uuid4().hex}", exclusive=True)(channel)
            queue.declare()
            correlation_id = uuid.uuid4().hex
            options.setdefault("content_encoding", None)
            properties = {"correlation_id": correlation_id, "reply_to": queue.name}
            self.publish(body, routing_key=routing_key, properties=properties, **options)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                message = queue.get(no_ack=True)
                if message is not None:
                    assert message.properties["correlation_id"] == correlation_id
                    return message
                time.sleep(0.01)
            raise AssertionError("no reply to a bare request")
        finally:
            channel.close()

    def close(self) -> None:
        self.connection.release()


def _stray_tracebacks(output: str) -> list[str]:
    """Log records with a traceback, other than a task failure logged with its own."""
    records = re.split(r"\n(?=\d{4}-\d\d-\d\d )", output)
    failure = re.compile(r"^\S+ \S+ (ERROR|WARNING) .* task \S+ \[\w+\] failed: ")
    return [r for r in records if "Traceback" in r and not failure.match(r)]


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedWorker]:
    """The module's worker; at the end, it must have survived everything it was sent."""
    queue = f"taskrpc.test.security.{request.module.__name__.rsplit('.', 1)[-1]}."
    queue += uuid.uuid4().hex[:8]
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    app = getattr(request.module, "WORKER_APP", "tests.security.apps:app")
    worker = ServedWorker(broker_url, queue, app, getattr(request.module, "WORKER_ENV", {}), log)
    yield worker
    alive = worker.alive()
    worker.stop()
    delete_queues(broker_url, [queue, BARE_QUEUE])
    output = worker.output()
    assert alive, f"the worker died:\n{output}"
    assert _stray_tracebacks(output) == [], output
    requeued = [
        line
        for line in output.splitlines()
        if "redelivered" in line and "expected-redelivery" not in line  # made on purpose
    ]
    assert not requeued, f"a request was requeued: {requeued}"


@pytest.fixture(scope="module")
def client_app(request: pytest.FixtureRequest, served: ServedWorker) -> Iterator[App]:
    options = getattr(request.module, "CLIENT_OPTIONS", {})
    app = App(
        "security-client",
        broker_url=served.broker_url,
        default_queue=served.queue,
        default_timeout=15,
        **options,
    )
    yield app
    app.close()


@pytest.fixture(scope="module")
def raw(client_app: App, served: ServedWorker) -> Iterator[RawCaller]:
    caller = RawCaller(client_app, served.broker_url)
    yield caller
    caller.close()


@pytest.fixture
def still_serving(client_app: App, served: ServedWorker) -> Iterator[None]:
    """After the test: the worker is up, answers a good call, and left nothing queued."""
    yield
    assert served.alive(), served.output()
    assert client_app.send_task("add", [2, 3]).get(timeout=10) == 5
    assert queue_state(served.broker_url, served.queue) == (0, 1), "requeued or not consumed"
