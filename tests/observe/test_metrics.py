"""Prometheus metrics of real workers and clients, through the real broker."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client import CollectorRegistry

from taskrpc import App, InvalidArguments, RemoteError, TimeoutError
from taskrpc.messages import HEADER_PROTOCOL, HEADER_TASK
from taskrpc.metrics import ClientMetrics, WorkerMetrics
from taskrpc.testing.broker import publish_raw

from .conftest import scrape, value

pytestmark = pytest.mark.broker


def wait_until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_a_processes_worker_counts_what_its_children_ran(rpc_app, spawn_worker, port, tmp_path):
    spawn_worker("--pool", "processes", "-c", "2", "--metrics-port", str(port))
    queue = rpc_app.settings.default_queue
    assert [rpc_app.send_task("add", [i, 1]).get() for i in range(5)] == [1, 2, 3, 4, 5]
    with pytest.raises(RemoteError):
        rpc_app.send_task("fail", ["boom"]).get()
    with pytest.raises(InvalidArguments):
        rpc_app.send_task("add", ["x", 1]).get()
    flaky = rpc_app.send_task("flaky", [str(tmp_path / "runs"), 2]).get()
    assert flaky["retries"] == 2
    with pytest.raises(RemoteError):
        rpc_app.send_task("no_such_task", []).get()

    samples = scrape(port)
    add = {"task": "add", "queue": queue}
    assert value(samples, "taskrpc_worker_received_total", **add) == 6
    assert value(samples, "taskrpc_worker_succeeded_total", **add) == 5
    assert value(samples, "taskrpc_worker_refused_total", reason="invalid_arguments", **add) == 1
    assert value(samples, "taskrpc_worker_failed_total", task="fail", code="task_failed") == 1
    assert value(samples, "taskrpc_worker_retried_total", task="flaky") == 2  # in a child
    assert value(samples, "taskrpc_worker_refused_total", task="<unknown>") == 1
    assert value(samples, "taskrpc_worker_run_seconds_count", **add) == 5
    assert value(samples, "taskrpc_worker_queue_wait_seconds_count", **add) == 6
    assert value(samples, "taskrpc_worker_in_progress", **add) == 0
    assert value(samples, "taskrpc_worker_pool_size") == 2
    assert value(samples, "taskrpc_worker_connected") == 1
    assert value(samples, "taskrpc_worker_reconnects_total") == 0


def test_refusals_duplicates_and_redeliveries_are_counted_by_reason(
    broker_url, rpc_app, start_worker
):
    registry = CollectorRegistry()
    worker_app = App(
        "test",
        broker_url=broker_url,
        default_queue=rpc_app.settings.default_queue,
        max_message_size=1000,
    )

    @worker_app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    start_worker(worker_app, middleware=[WorkerMetrics(registry)])
    queue = rpc_app.settings.default_queue
    body = json.dumps({"args": [1, 2], "kwargs": {}}).encode()
    headers = {HEADER_PROTOCOL: 1, HEADER_TASK: "add"}
    reply_queue = f"{queue}.replies"
    from kombu import Connection

    with Connection(broker_url) as connection:
        connection.default_channel.queue_declare(reply_queue, auto_delete=True)
        props = {"correlation_id": "same-id", "reply_to": reply_queue}
        for _ in range(2):  # the second one is answered from the reply cache
            publish_raw(broker_url, queue, body, properties=props, headers=headers)
        big = json.dumps({"args": ["x" * 2000, 1], "kwargs": {}}).encode()
        publish_raw(broker_url, queue, big, properties={"correlation_id": "big"}, headers=headers)
        late = {**headers, "taskrpc-deadline": time.time() - 5}
        publish_raw(broker_url, queue, body, properties={"correlation_id": "late"}, headers=late)

        def counted() -> float:
            return sum(
                v
                for (n, _), v in _samples(registry).items()
                if n in ("taskrpc_worker_received_total",)
            )

        rejected = "taskrpc_worker_rejected_total"
        wait_until(lambda: counted() == 4 and value(_samples(registry), rejected) >= 1)
        connection.default_channel.queue_delete(reply_queue)
    samples = _samples(registry)
    assert value(samples, "taskrpc_worker_duplicates_answered_total", task="add") == 1
    assert value(samples, "taskrpc_worker_succeeded_total", task="add") == 1
    # announced over the limit: its body dropped unread, refused like any request, rejected
    assert value(samples, "taskrpc_worker_refused_total", reason="payload_too_large") == 1
    assert value(samples, "taskrpc_worker_rejected_total", reason="PayloadTooLarge") == 1
    assert value(samples, "taskrpc_worker_refused_total", reason="deadline_exceeded") == 1


def _samples(registry: CollectorRegistry) -> dict:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def test_client_metrics_count_calls_replies_timeouts_and_round_trips(
    broker_url, unique_queue, start_worker
):
    registry = CollectorRegistry()
    app = App("test", broker_url=broker_url, default_queue=unique_queue, default_timeout=20)
    app.add_middleware(ClientMetrics(registry))

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="boom")
    def boom() -> None:
        raise ValueError("boom")

    @app.task(name="nap")
    def nap(seconds: float) -> None:
        time.sleep(seconds)

    try:
        start_worker(app, concurrency=2)
        assert add.delay(1, 2).get() == 3
        with pytest.raises(RemoteError):
            boom.delay().get()
        with pytest.raises(TimeoutError):
            nap.apply_async(args=(2.0,), timeout=0.5).get()
        samples = _samples(registry)
        assert value(samples, "taskrpc_client_calls_sent_total", task="add") == 1
        assert value(samples, "taskrpc_client_replies_total", task="add", status="ok") == 1
        assert value(samples, "taskrpc_client_replies_total", task="boom", status="error") == 1
        assert value(samples, "taskrpc_client_round_trip_seconds_count") == 2
        assert value(samples, "taskrpc_client_timeouts_total", task="nap") == 1
    finally:
        app.close()


def test_the_worker_refuses_to_start_when_the_metrics_port_is_taken(spawn_worker, port):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        worker = spawn_worker("--metrics-port", str(port), wait=False)
        assert worker.wait(timeout=30) == 2
    assert "cannot serve metrics" in worker.output()


def test_bench_metrics_runs_both_sides_and_reports_the_cost(broker_url, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "cost.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "taskrpc",
            "bench-metrics",
            "--broker",
            broker_url,
            "--rounds",
            "1",
            "--seq-calls",
            "20",
            "--pipelined-calls",
            "50",
            "--in-flight",
            "10",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "metrics on" in done.stdout and "cost" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["counted"] >= 70  # the metrics side's worker counted every call
    assert set(figures["pipelined"]) == {"metrics off", "metrics on", "cost"}


def test_a_lost_connection_shows_as_a_reconnect(broker_url, unique_queue, start_worker):
    from taskrpc.testing.proxy import FaultProxy

    registry = CollectorRegistry()
    with FaultProxy(("127.0.0.1", 5672)) as proxy:
        app = App(
            "test", broker_url=proxy.url(broker_url), default_queue=unique_queue, default_timeout=20
        )

        @app.task(name="add")
        def add(a: int, b: int) -> int:
            return a + b

        client = App("test", broker_url=broker_url, default_queue=unique_queue, default_timeout=20)
        try:
            start_worker(app, middleware=[WorkerMetrics(registry)])
            assert client.send_task("add", [1, 2]).get() == 3
            proxy.reset()  # every link gets a TCP reset: the worker reconnects
            wait_until(lambda: value(_samples(registry), "taskrpc_worker_reconnects_total") == 1)
            assert client.send_task("add", [2, 2]).get() == 4
            assert value(_samples(registry), "taskrpc_worker_connected") == 1
        finally:
            client.close()
            app.close()


def test_client_metrics_count_dropped_replies(broker_url, unique_queue, start_worker):
    from taskrpc import Middleware

    registry = CollectorRegistry()
    seen: list[str] = []

    class ReplyTo(Middleware):
        def before_request(self, job):
            seen.append(job.reply_to)

    app = App("test", broker_url=broker_url, default_queue=unique_queue, default_timeout=20)
    app.add_middleware(ClientMetrics(registry))

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    try:
        start_worker(app, middleware=[ReplyTo()])
        result = add.delay(1, 2)
        assert result.get() == 3
        body = json.dumps({"ok": True, "result": 3}).encode()
        for correlation_id in (result.id, "nobody-asked"):
            publish_raw(broker_url, seen[0], body, properties={"correlation_id": correlation_id})
        assert add.delay(2, 2).get() == 4  # the client reads on
        wait_until(lambda: value(_samples(registry), "taskrpc_client_dropped_replies_total") == 2)
        samples = _samples(registry)
        assert value(samples, "taskrpc_client_dropped_replies_total", kind="duplicate") == 1
        assert value(samples, "taskrpc_client_dropped_replies_total", kind="unknown") == 1
    finally:
        app.close()
