"""pytest plugin (entry point ``pytest11``): fixtures to test taskrpc apps on a real broker.

Fixtures:
    ``broker_url``: the RabbitMQ URL (``TASKRPC_TEST_BROKER_URL``, else the local default).
        With no reachable broker, tests using it skip with a loud reason, except under
        ``CI`` (any non-empty value but ``false``/``0``), where they fail.
    ``unique_queue``: a queue name no other test uses; deleted after the test.
    ``rpc_app``: an :class:`~taskrpc.App` on ``broker_url`` whose default queue is
        ``unique_queue``; closed after the test.
    ``start_worker``: ``start_worker(app, **worker_options)`` runs a
        :class:`~taskrpc.Worker` in a thread until the test ends.
    ``memory_app``: an app on the in-process ``memory://`` transport, for unit tests.
    ``rabbit_node``: ``rabbit_node(name, amqp_port, **options)`` starts an extra RabbitMQ
        node of the test's own (:class:`~taskrpc.testing.rabbitnode.RabbitNode`), killed
        and removed after the test; skips (fails in CI) without ``rabbitmq-server``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from ..app import App
from ..settings import safe_url
from ..worker import Worker
from .rabbitnode import RabbitNode, rabbitmq_available

#: Broker used by the fixtures unless ``TASKRPC_TEST_BROKER_URL`` says otherwise.
DEFAULT_TEST_BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def in_ci() -> bool:
    """Whether the ``CI`` environment variable asks for no skipping."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def broker_reachable(url: str, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to the broker's host and port succeeds."""
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "localhost", parsed.port or 5672), timeout
        ):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def broker_url() -> str:
    """URL of a reachable RabbitMQ; skips (fails in CI) when there is none."""
    url = os.environ.get("TASKRPC_TEST_BROKER_URL", DEFAULT_TEST_BROKER)
    if not broker_reachable(url):
        reason = f"RabbitMQ is not reachable at {safe_url(url)}"
        if in_ci():
            pytest.fail(f"{reason}, and CI is set: broker tests must not skip", pytrace=False)
        pytest.skip(f"!!! SKIPPED, NO BROKER: {reason} (start it: rabbitmq-server -detached)")
    return url


@pytest.fixture
def unique_queue(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh queue name; the queue (if it was declared) is deleted after the test."""
    name = f"taskrpc.test.{request.node.name[:40]}.{uuid.uuid4().hex[:8]}"
    yield name
    url = os.environ.get("TASKRPC_TEST_BROKER_URL", DEFAULT_TEST_BROKER)
    if broker_reachable(url, timeout=0.5):
        delete_queues(url, [name])


def delete_queues(url: str, names: list[str]) -> None:
    """Delete queues, ignoring ones that do not exist."""
    from kombu import Connection

    with Connection(url, connect_timeout=2) as connection:
        channel = connection.default_channel
        for name in names:
            channel.queue_delete(name)  # RabbitMQ: deleting a missing queue is not an error


@pytest.fixture
def rpc_app(broker_url: str, unique_queue: str) -> Iterator[App]:
    """An App on the real broker with a per-test default queue."""
    app = App("test", broker_url=broker_url, default_queue=unique_queue, default_timeout=20)
    yield app
    app.close()


@pytest.fixture
def memory_app() -> Iterator[App]:
    """An App on the in-process ``memory://`` transport, with a per-test queue."""
    app = App(
        "test-memory",
        broker_url="memory://",
        default_queue=f"memory.{uuid.uuid4().hex[:8]}",
        default_timeout=10,
    )
    yield app
    app.close()


@pytest.fixture
def start_worker() -> Iterator[Callable[..., Worker]]:
    """``start_worker(app, **options)``: run a Worker in a thread for this test."""
    workers: list[tuple[Worker, Any]] = []

    def start(app: App, **options: Any) -> Worker:
        worker = Worker(app, **options)
        thread = worker.start_in_thread()
        workers.append((worker, thread))
        return worker

    yield start
    for worker, thread in workers:
        worker.stop()
        thread.join(timeout=10)


@pytest.fixture
def rabbit_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RabbitNode]]:
    """``rabbit_node(name, amqp_port, **options)``: a started node, removed after the test."""
    if not rabbitmq_available():
        reason = "rabbitmq-server is not installed"
        if in_ci():
            pytest.fail(f"{reason}, and CI is set: broker tests must not skip", pytrace=False)
        pytest.skip(f"!!! SKIPPED, NO RABBITMQ SERVER: {reason}")
    nodes: list[RabbitNode] = []

    def start(name: str, amqp_port: int, **options: Any) -> RabbitNode:
        node = RabbitNode(name, amqp_port, tmp_path_factory.mktemp(name), **options)
        nodes.append(node)
        node.start()
        return node

    yield start
    for node in nodes:
        node.remove()
