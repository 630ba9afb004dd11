"""Requests a worker refuses are dead-lettered, never requeued, on a real broker.

A RabbitMQ node of this module's own (port 5721) so that a policy can give the task queue
a dead-letter exchange, as an operator would (``rabbitmqctl set_policy``): the worker
declares its classic task queue without arguments, and the policy adds
``dead-letter-exchange`` to it. A malformed body, a content type not accepted, a body
over the size limit (refused frame by frame, never held whole) and a delivery py-amqp
cannot decode are each rejected without requeue: the callers that can be answered are,
each lands in the dead-letter queue once, intact, with RabbitMQ's ``x-death`` naming the
reason (``rejected``) and the task queue, the worker's log names the request and its own
reason, and the worker goes on serving.

With quorum task queues the worker declares the dead-letter exchange and queue itself
(``Settings.dead_letter_queue``) and consumes them: a refused request is dead-lettered
there too, and dropped with a log line (only requests dead-lettered for their delivery
limit are answered from it).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from taskrpc import App, BadRequest, Settings
from taskrpc.testing.broker import queue_state
from taskrpc.testing.plugin import in_ci
from taskrpc.testing.rabbitnode import RabbitNode, rabbitmq_available
from taskrpc.transport import connect
from taskrpc.transport.base import BadDelivery, Delivery

from .conftest import RawCaller, ServedWorker
from .rawframes import RawPublisher, shortstr

pytestmark = pytest.mark.broker

#: This module's own node (5721-5729 are this suite's).
PORT = 5721
TASKS = "dlx-test.tasks"
DEAD = "dlx-test.dead"  # the dead-letter exchange and its queue
ADD = {"taskrpc-protocol": 1, "taskrpc-task": "add"}
OVERSIZED = 5 * 1024 * 1024  # over the worker's 4 MiB limit, under RabbitMQ's


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    if not rabbitmq_available():
        if in_ci():
            pytest.fail("rabbitmq-server is not installed, and CI is set", pytrace=False)
        pytest.skip("rabbitmq-server is not installed")
    node = RabbitNode("taskrpc-dlx", PORT, tmp_path_factory.mktemp("dlx-node"))
    node.start()
    try:
        yield node
    finally:
        node.remove()


def dead_letters(url: str, queue: str, count: int) -> list[Delivery | BadDelivery]:
    """Take ``count`` messages from ``queue`` with taskrpc's own frame reader, which hands
    over by its tag a delivery py-amqp cannot decode."""
    transport = connect(Settings(broker_url=url, broker_heartbeat=0, max_message_size=OVERSIZED))
    taken: list[Delivery | BadDelivery] = []
    transport.on_bad_delivery = taken.append
    transport.consume(queue, taken.append, no_ack=True)
    deadline = time.monotonic() + 30
    try:
        while len(taken) < count and time.monotonic() < deadline:
            transport.wait(0.2)
        settle = time.monotonic() + 0.5  # and nothing more comes
        while time.monotonic() < settle:
            transport.wait(0.1)
    finally:
        transport.close()
    return taken


def wait_for_messages(url: str, queue: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (queue_state(url, queue) or (0, 0))[0] < count and time.monotonic() < deadline:
        time.sleep(0.1)


def test_refused_requests_land_in_the_dead_letter_queue_once_with_the_reason(
    node: RabbitNode, tmp_path: Path
) -> None:
    policy = json.dumps({"dead-letter-exchange": DEAD})
    node.ctl("set_policy", "dlx-test", r"^dlx-test\.tasks$", policy, "--apply-to", "queues")
    with Connection(node.url) as connection:
        exchange = Exchange(DEAD, "fanout", durable=True)
        Queue(DEAD, exchange, durable=True)(connection.default_channel).declare()
    worker = ServedWorker(node.url, TASKS, "tests.security.apps:app", {}, tmp_path / "w.log")
    app = App("dlx-client", broker_url=node.url, default_queue=TASKS, default_timeout=15)
    raw, frames = RawCaller(app, node.url), RawPublisher(node.url)
    try:
        yaml = "application/x-yaml"
        refused = {
            "DecodeError": raw.call(b"{oops", headers=ADD),
            "ContentDisallowed": raw.call(b"args: [1, 2]", content_type=yaml, headers=ADD),
            "PayloadTooLarge": raw.call(b"x" * OVERSIZED, headers=ADD),
        }
        ids = {kind: result.id for kind, result in refused.items()}
        ids["Undecodable"] = undecodable = uuid.uuid4().hex
        properties = {"content_type": shortstr(b"\xff"), "correlation_id": undecodable}
        frames.publish(TASKS, b'{"args": [1, 2]}', {**properties, "application_headers": ADD})
        for kind, result in refused.items():
            with pytest.raises(BadRequest) as info:
                result.get(timeout=15)
            assert info.value.type_name == kind
        wait_for_messages(node.url, DEAD, 4)
        assert app.send_task("add", [2, 3]).get(timeout=10) == 5  # still serving
        assert queue_state(node.url, TASKS) == (0, 1), "requeued, or left in the queue"
        assert worker.alive()
    finally:
        raw.close()
        frames.close()
        app.close()
        worker.stop()
    taken = dead_letters(node.url, DEAD, 4)
    assert len(taken) == 4, taken  # each exactly once
    [bad] = [each for each in taken if isinstance(each, BadDelivery)]
    assert "content type is not UTF-8" in bad.reason or "properties" in bad.reason
    letters = [each for each in taken if isinstance(each, Delivery)]
    by_id = {letter.properties["correlation_id"]: letter for letter in letters}
    assert set(by_id) == {ids["DecodeError"], ids["ContentDisallowed"], ids["PayloadTooLarge"]}
    assert by_id[ids["DecodeError"]].body == b"{oops"  # intact, for a look
    assert len(by_id[ids["PayloadTooLarge"]].body) == OVERSIZED
    for letter in by_id.values():
        [death] = letter.headers["x-death"]
        assert (death["reason"], death["queue"], death["count"]) == ("rejected", TASKS, 1)
        assert letter.headers["x-first-death-reason"] == "rejected"
        assert not letter.redelivered
    log = worker.output()
    for kind, request_id in ids.items():  # the worker's reason, by the request it names
        lines = [line for line in log.splitlines() if f"without requeue ({kind})" in line]
        assert len(lines) == 1, (kind, lines)
        if kind != "Undecodable":  # (its properties, correlation id included, unreadable)
            assert f"(request '{request_id}')" in lines[0], lines
    assert "Traceback" not in log


def test_with_quorum_queues_the_worker_dead_letters_a_refusal_and_drops_it(
    node: RabbitNode, tmp_path: Path
) -> None:
    queue, dead = f"dlx-quorum.{uuid.uuid4().hex[:8]}", f"dlx-quorum.dead.{uuid.uuid4().hex[:8]}"
    # Only the task queue is quorum (the app's bare queue stays as the other test made it).
    env = {"TASKRPC_QUEUE_TYPES": f"{queue}=quorum", "TASKRPC_DEAD_LETTER_QUEUE": dead}
    worker = ServedWorker(node.url, queue, "tests.security.apps:app", env, tmp_path / "w.log")
    app = App("dlx-quorum", broker_url=node.url, default_queue=queue, default_timeout=15,
              queue_types=(f"{queue}=quorum",), dead_letter_queue=dead)  # fmt: skip
    raw = RawCaller(app, node.url)
    try:
        result = raw.call(b"{oops", headers=ADD)
        with pytest.raises(BadRequest) as info:
            result.get(timeout=15)
        assert info.value.type_name == "DecodeError"
        deadline = time.monotonic() + 15
        while "(rejected): dropped" not in worker.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"[{result.id}] (rejected): dropped" in worker.output()
        assert app.send_task("add", [2, 3]).get(timeout=10) == 5
        assert queue_state(node.url, queue) == (0, 1)
        assert queue_state(node.url, dead) == (0, 1)  # taken by the worker, not redelivered
    finally:
        raw.close()
        app.close()
        worker.stop()
    assert worker.output().count(f"(request '{result.id}')") == 1
