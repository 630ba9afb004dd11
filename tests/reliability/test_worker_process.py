"""Real worker processes: crash, redelivery, graceful and hard shutdown, bad input."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from taskrpc import App, BadRequest, TimeoutError, WorkerLost
from taskrpc.messages import HEADER_PROTOCOL, HEADER_TASK
from taskrpc.testing.broker import publish_raw, queue_state

pytestmark = pytest.mark.broker


def wait_for_lines(path: Path, count: int, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {count} lines")


@pytest.fixture
def app(rpc_app: App) -> App:
    return rpc_app


def test_a_worker_killed_mid_task_leaves_the_call_to_a_second_worker(app, spawn_worker, tmp_path):
    marker = tmp_path / "runs"
    first = spawn_worker("--pool", "threads")
    result = app.send_task("marked_sleep", [str(marker), 1.0, 7])
    wait_for_lines(marker, 1)
    first.signal(signal.SIGKILL)
    first.wait()
    second = spawn_worker("--pool", "threads")
    assert result.get(timeout=20) == 7
    runs = wait_for_lines(marker, 2)
    assert len(runs) == 2 and runs[0] != runs[1]  # ran twice, in two processes
    assert app.client.duplicate_replies == 0  # the first run never replied
    assert "redelivered request marked_sleep" in second.output()


def test_sigterm_finishes_the_request_in_hand_and_exits_zero(
    app, spawn_worker, tmp_path, broker_url
):
    marker = tmp_path / "runs"
    worker = spawn_worker("--pool", "threads", "--concurrency", "1", "--prefetch", "1")
    in_hand = app.send_task("marked_sleep", [str(marker), 1.0, 1])
    wait_for_lines(marker, 1)
    worker.signal(signal.SIGTERM)
    later = app.send_task("add", [1, 2])
    assert in_hand.get(timeout=15) == 1
    assert worker.wait(timeout=15) == 0
    assert not later.ready()  # the stopping worker took nothing new
    assert queue_state(broker_url, app.settings.default_queue)[0] == 1
    spawn_worker()
    assert later.get(timeout=15) == 3


def test_sigterm_requeues_prefetched_requests_it_has_not_started(app, spawn_worker, tmp_path):
    marker = tmp_path / "runs"
    worker = spawn_worker("--pool", "threads", "--concurrency", "1", "--prefetch", "5")
    started = app.send_task("marked_sleep", [str(marker), 1.0, 0])
    waiting = [app.send_task("add", [i, 0]) for i in range(4)]
    wait_for_lines(marker, 1)
    worker.signal(signal.SIGTERM)
    assert started.get(timeout=15) == 0
    assert worker.wait(timeout=15) == 0
    spawn_worker()
    assert [r.get(timeout=15) for r in waiting] == [0, 1, 2, 3]


def test_a_second_interrupt_exits_at_once_and_the_request_is_redelivered(
    app, spawn_worker, tmp_path
):
    marker = tmp_path / "runs"
    worker = spawn_worker("--pool", "processes", "--concurrency", "1")
    result = app.send_task("marked_sleep", [str(marker), 30.0, 5])
    wait_for_lines(marker, 1)
    worker.signal(signal.SIGINT)
    time.sleep(0.2)
    worker.signal(signal.SIGINT)
    assert worker.wait(timeout=5) == 130
    spawn_worker()
    with pytest.raises(TimeoutError):  # the redelivered run sleeps 30 s; only check redelivery
        result.get(timeout=0.5)
    assert len(wait_for_lines(marker, 2)) == 2


def test_the_processes_pool_runs_cpu_bound_tasks_in_parallel(app, spawn_worker):
    spawn_worker("--pool", "processes", "--concurrency", "2")
    results = [app.send_task("spin", [0.5]) for _ in range(4)]
    pids = {r.get(timeout=20) for r in results}
    assert len(pids) == 2


def test_a_killed_pool_child_answers_worker_lost_and_the_worker_carries_on(
    app, spawn_worker, tmp_path
):
    import os

    marker = tmp_path / "runs"
    spawn_worker("--pool", "processes", "--concurrency", "1")
    result = app.send_task("marked_sleep", [str(marker), 30.0, 0])
    child = int(wait_for_lines(marker, 1)[0])
    os.kill(child, signal.SIGKILL)
    with pytest.raises(WorkerLost, match=rf"pool process {child} .* killed by SIGKILL \(9\)"):
        result.get(timeout=15)
    assert app.send_task("add", [2, 3]).get(timeout=15) == 5


@pytest.mark.parametrize(
    ("headers", "body", "content_type"),
    [
        ({}, b'{"args": [1, 2]}', "application/json"),  # no task header
        ({HEADER_TASK: "add"}, b"\x80\x04K\x01.", "application/x-python-serialize"),  # pickle
        ({HEADER_TASK: "add"}, b"{oops", "application/json"),
        ({HEADER_TASK: "add"}, b'{"args": [1, 2]}', "text/plain"),
        ({HEADER_TASK: "add"}, b'"just a string"', "application/json"),
        ({HEADER_TASK: 42}, b'{"args": [1, 2]}', "application/json"),
    ],
    ids=[
        "no-task-header",
        "pickle",
        "bad-json",
        "wrong-content-type",
        "not-an-object",
        "task-not-a-string",
    ],
)
def test_malformed_requests_get_an_error_reply_and_the_worker_keeps_serving(
    app, spawn_worker, broker_url, headers, body, content_type
):
    spawn_worker("--pool", "solo")
    client = app.client
    from taskrpc.client.replies import PendingCall
    from taskrpc.client.result import AsyncResult

    call = PendingCall("c0ffee" * 5 + "00", "raw", time.monotonic() + 15)
    client._router.add(call)
    publish_raw(
        broker_url,
        app.settings.default_queue,
        body,
        content_type=content_type,
        headers={HEADER_PROTOCOL: 1, **headers},
        properties={"correlation_id": call.id, "reply_to": client._listener.wait_ready(10)},
    )
    with pytest.raises(BadRequest):
        AsyncResult(app, call, None).get()
    assert app.send_task("add", [1, 2]).get(timeout=10) == 3
    assert queue_state(broker_url, app.settings.default_queue)[0] == 0  # nothing requeued


def test_requests_without_reply_to_are_run_and_acked(app, spawn_worker, broker_url, tmp_path):
    marker = tmp_path / "runs"
    spawn_worker("--pool", "solo")
    publish_raw(
        broker_url,
        app.settings.default_queue,
        b'{"args": ["%s", 0, 1]}' % str(marker).encode(),
        headers={HEADER_PROTOCOL: 1, HEADER_TASK: "marked_sleep"},
    )
    publish_raw(broker_url, app.settings.default_queue, b"garbage", headers={})
    wait_for_lines(marker, 1)
    assert app.send_task("add", [1, 2]).get(timeout=10) == 3
    assert queue_state(broker_url, app.settings.default_queue)[0] == 0


def test_batched_acks_never_cover_a_request_still_running(app, spawn_worker, tmp_path):
    # Answered requests are acked together with one ``multiple`` ack; a request received
    # before them and still running must stay unacked, so a crash redelivers it, and only it.
    slow_marker, fast_marker = tmp_path / "slow", tmp_path / "fast"
    first = spawn_worker("--pool", "threads", "--concurrency", "8")
    slow = app.client.send("marked_sleep", [str(slow_marker), 2.0, 99], timeout=15)
    wait_for_lines(slow_marker, 1)
    fast = [app.send_task("marked_sleep", [str(fast_marker), 0.01, i]) for i in range(100)]
    assert [r.get(timeout=15) for r in fast] == list(range(100))
    time.sleep(0.3)  # the acks follow the replies within the same loop pass
    first.signal(signal.SIGKILL)
    first.wait()
    spawn_worker("--pool", "threads", "--concurrency", "2")
    assert slow.get() == 99
    assert len(wait_for_lines(slow_marker, 2)) == 2  # ran again after the crash
    assert len(fast_marker.read_text().splitlines()) == 100  # acked: none ran twice
