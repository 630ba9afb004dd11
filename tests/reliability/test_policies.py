"""Deadlines, task retries, time limits and unroutable requests, with real worker processes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from taskrpc import (
    App,
    ConfigurationError,
    RemoteError,
    TimeLimitExceeded,
    TimeoutError,
    TimeoutPolicy,
    Unroutable,
    Worker,
)
from taskrpc.testing.broker import queue_state

pytestmark = pytest.mark.broker


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_requests_nobody_took_before_their_deadline_never_run(
    rpc_app, spawn_worker, tmp_path, broker_url
):
    marker = tmp_path / "runs"
    calls = [rpc_app.send_task("marked_sleep", [str(marker), 0, i], timeout=1) for i in range(5)]
    for call in calls:
        with pytest.raises(TimeoutError):
            call.get()
    time.sleep(0.2)  # let the broker finish expiring them
    assert queue_state(broker_url, rpc_app.settings.default_queue)[0] == 0
    spawn_worker("--pool", "solo")
    assert rpc_app.send_task("add", [1, 1]).get(timeout=10) == 2
    assert lines(marker) == []  # the worker started later ran none of them


def test_a_worker_refuses_a_request_whose_deadline_passed_while_it_waited(
    rpc_app, spawn_worker, tmp_path
):
    marker = tmp_path / "runs"
    worker = spawn_worker("--pool", "solo", "--prefetch", "10")
    busy = rpc_app.send_task("marked_sleep", [str(marker), 1.5, 0])
    late = rpc_app.send_task("marked_sleep", [str(marker), 0, 1], timeout=0.5)
    with pytest.raises(TimeoutError):
        late.get()
    assert busy.get(timeout=10) == 0
    assert rpc_app.send_task("add", [1, 1]).get(timeout=10) == 2  # after `late` was handled
    assert len(lines(marker)) == 1
    assert "after its deadline; not run" in worker.output()


def test_a_retryable_failure_is_retried_and_the_caller_gets_the_result(
    rpc_app, spawn_worker, tmp_path
):
    spawn_worker("--pool", "threads")
    result = rpc_app.send_task("flaky", [str(tmp_path / "runs"), 2]).get(timeout=15)
    assert result == {"runs": 3, "retries": 2, "last_error": "Flaky('run 2')"}


def test_a_non_retryable_failure_is_not_retried(rpc_app, spawn_worker, tmp_path):
    marker = tmp_path / "runs"
    spawn_worker("--pool", "threads")
    with pytest.raises(RemoteError, match="not retryable"):
        rpc_app.send_task("broken", [str(marker)]).get(timeout=15)
    assert len(lines(marker)) == 1


@pytest.mark.parametrize("pool", ["processes", "solo"])
def test_a_soft_limit_interrupts_the_task_which_may_catch_it(rpc_app, spawn_worker, pool):
    spawn_worker("--pool", pool, "--concurrency", "1")
    assert rpc_app.send_task("soft_limited", [True]).get(timeout=10) == "cleaned up"
    with pytest.raises(TimeLimitExceeded):
        rpc_app.send_task("soft_limited", [False]).get(timeout=10)


def test_a_hard_limit_kills_only_the_overrunning_task(rpc_app, spawn_worker):
    spawn_worker("--pool", "processes", "--concurrency", "2")
    slow = rpc_app.send_task("hard_limited", [30])
    neighbour = rpc_app.send_task("hard_limited", [0.3])
    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match="hard time limit"):
        slow.get(timeout=15)
    assert time.monotonic() - started < 10
    assert neighbour.get(timeout=10) == 0.3  # its process was not touched
    assert rpc_app.send_task("add", [2, 2]).get(timeout=10) == 4  # and the pool recovered


def test_a_hard_limit_beyond_the_brokers_consumer_timeout_is_refused_at_start():
    app = App("limits", broker_url="memory://", broker_consumer_timeout=60)

    @app.task(timeouts=TimeoutPolicy(hard_limit=120))
    def long() -> None: ...

    with pytest.raises(ConfigurationError, match="consumer_timeout"):
        Worker(app, pool="processes")


def test_a_request_to_a_deleted_queue_fails_at_once_as_unroutable(rpc_app, spawn_worker):
    worker = spawn_worker("--pool", "solo")
    assert rpc_app.send_task("add", [1, 2]).get(timeout=10) == 3
    worker.signal(15)
    worker.wait()
    from kombu import Connection

    with Connection(rpc_app.settings.broker_url) as connection:
        connection.default_channel.queue_delete(rpc_app.settings.default_queue)
    started = time.monotonic()
    result = rpc_app.send_task("add", [1, 2], timeout=20)
    with pytest.raises(Unroutable, match="no queue is bound"):
        result.get()
    assert time.monotonic() - started < 5  # at once, not at the deadline
    assert rpc_app.send_task("add", [1, 2]).ready() is False  # re-declared: queued again


def test_a_crash_between_reply_and_ack_gives_a_suppressed_duplicate_reply(
    rpc_app, spawn_worker, monkeypatch
):
    monkeypatch.setenv("SAMPLE_CRASH_AFTER_REPLY", "1")
    first = spawn_worker("--pool", "solo")
    result = rpc_app.send_task("add", [20, 22])
    assert result.get(timeout=10) == 42  # the reply went out...
    assert first.wait(timeout=10) == 1  # ...and the worker died before acking
    monkeypatch.delenv("SAMPLE_CRASH_AFTER_REPLY")
    spawn_worker("--pool", "solo")  # gets the redelivered request, runs it again
    client = rpc_app.client
    deadline = time.monotonic() + 10
    while client.duplicate_replies < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.duplicate_replies == 1 and result.get() == 42
