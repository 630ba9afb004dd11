"""Celery-style jobs on RabbitMQ: fire-and-forget for real, and priorities."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import amqp
import pytest

from taskrpc import App, ConfigurationError, Worker
from taskrpc.messages import HEADER_DEADLINE
from taskrpc.testing.plugin import delete_queues

pytestmark = pytest.mark.broker


def _peek(broker_url: str, queue: str) -> amqp.Message | None:
    connection = amqp.Connection(broker_url.split("@")[-1].rstrip("/"))
    connection.connect()
    try:
        return connection.channel().basic_get(queue, no_ack=True)
    finally:
        connection.close()


def test_a_published_job_asks_for_no_reply_is_persistent_and_never_expires(broker_url):
    queue = f"taskrpc.test.jobs.{uuid.uuid4().hex[:8]}"
    app = App("jobs", broker_url=broker_url, default_queue=queue)

    @app.task(name="email")
    def email(to: str) -> None: ...

    try:
        request_id = email.publish("ada@example.com")  # nobody serves the queue yet
        message = _peek(broker_url, queue)
    finally:
        app.close()
        delete_queues(broker_url, [queue])
    assert message is not None and message.properties["correlation_id"] == request_id
    assert "reply_to" not in message.properties and "expiration" not in message.properties
    assert message.properties["delivery_mode"] == 2
    assert HEADER_DEADLINE not in message.headers


def test_fire_and_forget_runs_counts_no_unknown_reply_and_logs_failures(rpc_app, caplog):
    ran = threading.Event()

    @rpc_app.task(name="send_mail", ignore_result=True)
    def send_mail(to: str) -> None:
        if to == "nobody":
            raise ValueError("no such mailbox: nobody")
        ran.set()

    worker = Worker(rpc_app, pool="threads")
    thread = worker.start_in_thread()
    caplog.set_level(logging.INFO, logger="taskrpc.worker")
    try:
        handle = send_mail.delay("ada@example.com")  # the task ignores results
        assert ran.wait(10)
        with pytest.raises(ConfigurationError, match="fire-and-forget"):
            handle.get(timeout=5)
        for n in range(5):
            send_mail.publish(f"user{n}@example.com")
        send_mail.publish("nobody")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _failures(caplog):
            time.sleep(0.05)
        time.sleep(0.3)  # any reply would be in by now
        assert rpc_app.client.stats.unknown == 0 and rpc_app.client.pending == 0
    finally:
        worker.stop()
        thread.join(10)
    (failure,) = _failures(caplog)
    assert failure.levelno == logging.ERROR and failure.exc_info is not None
    assert "ValueError: no such mailbox: nobody" in failure.getMessage()


def _failures(caplog):
    return [r for r in caplog.records if "failed: ValueError" in r.getMessage()]


def test_high_priority_requests_overtake_a_backlog_of_low_ones(broker_url):
    queue = f"taskrpc.test.priority.{uuid.uuid4().hex[:8]}"
    app = App("prio", broker_url=broker_url, default_queue=queue, max_priority=9)
    order: list[str] = []

    @app.task(name="work")
    def work(label: str, seconds: float = 0.0) -> None:
        time.sleep(seconds)
        order.append(label)

    worker = Worker(app, pool="solo", prefetch=1)
    thread = worker.start_in_thread()
    try:
        busy = work.delay("busy", 1.0)  # the worker is busy with this one...
        low = [work.with_options(priority=1).delay(f"low{n}") for n in range(8)]
        high = [work.with_options(priority=9).delay(f"high{n}") for n in range(3)]
        for handle in [busy, *low, *high]:
            handle.get(timeout=30)
    finally:
        worker.stop()
        thread.join(10)
        app.close()
        delete_queues(broker_url, [queue])
    # ...and has prefetched at most one low one: every high one runs before the others.
    last_high = max(order.index(f"high{n}") for n in range(3))
    lows_before = [label for label in order[:last_high] if label.startswith("low")]
    assert len(lows_before) <= 1, order


def test_a_priority_the_queue_cannot_do_is_refused_on_the_caller(broker_url):
    plain = App("prio", broker_url=broker_url)
    quorum = App("prio", broker_url=broker_url, max_priority=5, queue_type="quorum")
    ranked = App("prio", broker_url=broker_url, max_priority=5)
    for app in (plain, quorum, ranked):
        app.task(name="job")(lambda: None)
    with pytest.raises(ConfigurationError, match="set max_priority"):
        plain.get_task("job").with_options(priority=1).delay()
    with pytest.raises(ConfigurationError, match="quorum queue"):
        quorum.get_task("job").with_options(priority=1).delay()
    with pytest.raises(ConfigurationError, match=r"outside 0\.\.5"):
        ranked.get_task("job").with_options(priority=6).delay()
    for app in (plain, quorum, ranked):
        assert not app._clients.made
