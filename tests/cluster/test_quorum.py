"""Quorum task queues on the shared broker: declared alike by client and worker, their
dead-letter queue, a clear error for a queue of the other type, and poison requests.

Each test uses its own task queue and its own dead-letter queue (the shared broker serves
everyone), so nothing here changes the broker beyond queues it deletes afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection

from taskrpc import App, BrokerError, PoisonRequest
from taskrpc.testing.broker import wait_for_consumers
from taskrpc.testing.plugin import delete_queues

from .workers import WorkerGroup

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

DELIVERY_LIMIT = 2


@pytest.fixture
def dead_letters(broker_url: str) -> Iterator[str]:
    """A dead-letter queue (and exchange) name of this test's own; deleted after."""
    name = f"taskrpc.test.dead.{uuid.uuid4().hex[:8]}"
    yield name
    delete_queues(broker_url, [name])
    with Connection(broker_url, connect_timeout=2) as connection:
        connection.default_channel.exchange_delete(name)


@pytest.fixture
def quorum_env(broker_url: str, unique_queue: str, dead_letters: str) -> dict[str, str]:
    """The ``TASKRPC_*`` settings of a quorum deployment on this test's queues."""
    return {
        "TASKRPC_BROKER_URL": broker_url,
        "TASKRPC_DEFAULT_QUEUE": unique_queue,
        "TASKRPC_QUEUE_TYPE": "quorum",
        "TASKRPC_DELIVERY_LIMIT": str(DELIVERY_LIMIT),
        "TASKRPC_DEAD_LETTER_QUEUE": dead_letters,
    }


@pytest.fixture
def workers(quorum_env: dict[str, str], tmp_path: Path) -> Iterator[list[WorkerGroup]]:
    """Worker groups started by the test (``WorkerGroup(quorum_env, ...)``), stopped after."""
    groups: list[WorkerGroup] = []
    yield groups
    for group in groups:
        group.stop()


def client_app(env: dict[str, str], **options: object) -> App:
    from taskrpc import Settings

    return App("client", settings=Settings.from_env(env), default_timeout=60, **options)


def redeclare(url: str, queue: str, arguments: dict[str, object]) -> str | None:
    """Declare ``queue`` again with ``arguments``: ``None`` if they match, else the refusal."""
    with Connection(url, connect_timeout=2) as connection:
        try:
            connection.default_channel.queue_declare(
                queue, durable=True, auto_delete=False, arguments=arguments
            )
        except connection.channel_errors as exc:
            return str(exc)
    return None


def test_client_and_worker_declare_one_quorum_queue_with_its_dead_letters(
    broker_url, unique_queue, dead_letters, quorum_env, workers, tmp_path
):
    workers.append(WorkerGroup(quorum_env, tmp_path, 1, "-P", "solo"))
    wait_for_consumers(broker_url, unique_queue, timeout=30)
    wait_for_consumers(broker_url, dead_letters, timeout=30)
    with client_app(quorum_env) as app:  # the client declares the queue too, identically
        assert app.send_task("add", [2, 3]).get(timeout=30) == 5

    expected = {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": dead_letters,
    }
    assert redeclare(broker_url, unique_queue, expected) is None
    refused = redeclare(broker_url, unique_queue, {**expected, "x-delivery-limit": 9})
    assert refused is not None and "x-delivery-limit" in refused
    assert redeclare(broker_url, dead_letters, {"x-queue-type": "quorum"}) is None


def test_a_classic_queue_in_the_way_is_reported_naming_the_setting(
    broker_url, unique_queue, quorum_env, workers, tmp_path
):
    with Connection(broker_url, connect_timeout=2) as connection:
        connection.default_channel.queue_declare(unique_queue, durable=True, auto_delete=False)
    group = WorkerGroup(quorum_env, tmp_path, 1)
    workers.append(group)
    deadline = time.monotonic() + 60
    while not group.exits and time.monotonic() < deadline:
        time.sleep(0.1)
    group.stop()
    assert group.exits[:1] == [2], group.logs()  # a refusal retrying cannot fix
    log = group.logs()
    assert f"queue '{unique_queue}' exists" in log and "a classic queue" in log
    assert "TASKRPC_QUEUE_TYPE" in log

    with client_app(quorum_env) as app, pytest.raises(BrokerError) as info:
        app.send_task("add", [1, 1]).get(timeout=30)
    assert "a classic queue" in str(info.value)
    assert "queue_type" in str(info.value)


def test_the_request_context_counts_deliveries(
    broker_url, unique_queue, quorum_env, workers, tmp_path
):
    workers.append(WorkerGroup(quorum_env, tmp_path, 1, "-P", "solo"))
    wait_for_consumers(broker_url, unique_queue, timeout=30)
    marker = tmp_path / "died"
    with client_app(quorum_env) as app:
        # The first delivery kills its worker; the restarted worker gets it again.
        result = app.send_task("deliveries", [str(marker)]).get(timeout=60)
    assert result == {"delivery_count": 1, "redelivered": True}
    assert workers[0].exits == [17]


def test_a_poison_request_is_dead_lettered_and_its_caller_told(
    broker_url, unique_queue, dead_letters, quorum_env, workers, tmp_path
):
    group = WorkerGroup(quorum_env, tmp_path, 2, "-P", "solo", "--prefetch", "1")
    workers.append(group)
    wait_for_consumers(broker_url, unique_queue, count=2, timeout=30)
    marker = tmp_path / "poison-runs"
    others: list[int] = []
    started = time.monotonic()
    with client_app(quorum_env) as app:
        poison = app.send_task("poison", [str(marker)], timeout=100)
        n = 0
        while (not poison.ready() or n < 50) and time.monotonic() - started < 90:
            n += 1
            others.append(app.send_task("add", [n, n]).get(timeout=60))
        with pytest.raises(PoisonRequest) as info:
            poison.get(timeout=10)
    took = time.monotonic() - started
    runs = len(marker.read_text().splitlines())
    print_table(
        "poison request, delivery limit 2, two solo workers restarted on exit",
        [
            ("calls made", f"1 poison + {len(others)} others"),
            ("poison request runs (each killed its worker)", runs),
            ("poison caller's error", f"{type(info.value).__name__}: {info.value.message}"),
            ("seconds until the caller knew (deadline 100 s)", f"{took:.1f}"),
            ("other calls: exact results", sum(r == 2 * i for i, r in enumerate(others, 1))),
            ("worker exits / starts", f"{len(group.exits)} / {group.starts}"),
        ],
    )
    assert info.value.delivery_count == DELIVERY_LIMIT + 1
    assert info.value.details["queue"] == unique_queue
    assert runs == DELIVERY_LIMIT + 1
    assert others == [2 * i for i in range(1, len(others) + 1)]
    assert "poison request poison" in group.logs()


def print_table(title: str, rows: list[tuple[str, object]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
