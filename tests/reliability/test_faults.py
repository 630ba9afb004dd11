"""Broker and worker faults in the middle of a stream of calls.

Each test tallies how every call ended: answered (with its own answer, or a wrong one),
failed fast with a clear error, timed out at its deadline, or hung past it. Tests that
cut every connection or restart the broker affect the whole broker: they run serially,
as the suite does.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from taskrpc import App, BrokerError, ConnectionLost, RetryPolicy
from taskrpc import TimeoutError as CallTimeout

pytestmark = pytest.mark.broker


def call_stream(app: App, count: int, *, threads: int = 4, timeout: float = 10.0) -> dict:
    """Make ``count`` calls of ``slow_add(i, 1000)``; tally how each one ended."""
    tally = {"ok": 0, "wrong": 0, "failed_fast": 0, "timed_out": 0, "hung": 0, "errors": []}
    lock = threading.Lock()

    def one(i: int) -> None:
        started = time.monotonic()
        try:
            value = app.send_task("slow_add", [i, 1000], timeout=timeout).get()
            kind = "ok" if value == i + 1000 else "wrong"
        except (ConnectionLost, BrokerError) as exc:  # a clear, early error: allowed
            kind = "failed_fast"
            with lock:
                tally["errors"].append(repr(exc))
        except CallTimeout:
            kind = "timed_out"  # at its deadline: lost, but nobody waited longer
        if time.monotonic() - started > timeout + 2:
            kind = "hung"  # nothing may wait past its deadline
        with lock:
            tally[kind] += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    return tally


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def test_a_worker_killed_again_and_again_loses_no_call(rpc_app, spawn_worker):
    spawn_worker("--pool", "threads", "--concurrency", "4")  # the survivor
    victim = spawn_worker("--pool", "threads", "--concurrency", "4")
    stop = threading.Event()
    kills = 0

    def killer() -> None:
        nonlocal victim, kills
        while kills < 4 and not stop.wait(0.3):
            victim.signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            victim = spawn_worker("--pool", "threads", "--concurrency", "4", wait=False)

    thread = threading.Thread(target=killer)
    thread.start()
    total = {"ok": 0, "calls": 0}
    try:  # keep calling until the killer is done: at least 4 kills under load, 500+ calls
        while thread.is_alive() or total["calls"] < 500:
            tally = call_stream(rpc_app, 100, threads=8, timeout=20)
            assert tally["ok"] == 100, tally  # every call answered, each with its own answer
            total["ok"] += tally["ok"]
            total["calls"] += 100
    finally:
        stop.set()
        thread.join()
    assert kills == 4 and total["ok"] == total["calls"] >= 500


def test_closing_every_connection_mid_stream_recovers_on_its_own(rpc_app, spawn_worker):
    spawn_worker("--pool", "threads", "--concurrency", "4")
    assert rpc_app.send_task("slow_add", [1, 1]).get(timeout=10) == 2
    cutter = threading.Timer(0.5, rabbitmqctl, ("close_all_connections", "fault test"))
    cutter.start()
    tally = call_stream(rpc_app, 300, timeout=8)
    cutter.join()
    assert tally["hung"] == 0 and tally["wrong"] == 0, tally
    # Calls in flight across the cut fail fast (their reply queue is gone) or are resent.
    assert tally["timed_out"] == 0, tally
    assert tally["ok"] + tally["failed_fast"] + tally["timed_out"] == 300
    # Client and worker reconnected by themselves: new calls go through. A call made
    # just after the cut may still go out on the dying connection before the client has
    # read the broker's close: it is then in doubt and, not being idempotent, fails with
    # ConnectionLost (never a silent resend). The next one must succeed.
    deadline = time.monotonic() + 20
    while True:
        try:
            assert rpc_app.send_task("slow_add", [2, 2]).get(timeout=20) == 4
            break
        except ConnectionLost:
            assert time.monotonic() < deadline, "no recovery after the cut"
    assert call_stream(rpc_app, 50)["ok"] == 50


def test_a_broker_restart_mid_stream_recovers_on_its_own(rpc_app, spawn_worker, broker_url):
    spawn_worker("--pool", "threads", "--concurrency", "4")
    assert rpc_app.send_task("slow_add", [1, 1]).get(timeout=10) == 2

    def restart() -> None:
        rabbitmqctl("stop_app")
        time.sleep(1)
        rabbitmqctl("start_app")

    restarter = threading.Timer(0.3, restart)
    restarter.start()
    try:
        tally = call_stream(rpc_app, 200, timeout=6)
    finally:
        restarter.join()
        rabbitmqctl("await_startup")
    assert tally["hung"] == 0 and tally["wrong"] == 0, tally  # down: fail fast or time out
    deadline = time.monotonic() + 30
    while True:  # the worker re-declares its queue and consumes again
        try:
            assert rpc_app.send_task("slow_add", [2, 2], timeout=5).get() == 4
            break
        except (CallTimeout, BrokerError, ConnectionLost):
            assert time.monotonic() < deadline, "no recovery after the broker restart"
    assert call_stream(rpc_app, 50)["ok"] == 50


def test_an_unreachable_broker_fails_calls_in_time_and_backs_off(unique_queue):
    attempts = 0
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    done = threading.Event()

    def refuse() -> None:  # accept and hang up at once: a broker that is not there
        nonlocal attempts
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            attempts += 1
            conn.close()

    thread = threading.Thread(target=refuse)
    thread.start()
    app = App(
        "offline",
        broker_url=f"amqp://guest:guest@127.0.0.1:{port}//",
        default_queue=unique_queue,
        connect_retry=RetryPolicy(max_retries=50, backoff=0.2, max_delay=1.0),
    )
    started = time.monotonic()
    try:
        with pytest.raises(BrokerError):
            app.send_task("add", [1, 2], timeout=3).get()
        elapsed = time.monotonic() - started
        assert elapsed < 4  # within the call's deadline (plus scheduling slack)
        time.sleep(2)
    finally:
        app.close()
        done.set()
        thread.join()
        server.close()
    # Backoff 0.2, 0.4, 0.8, 1, 1... over ~5 s is under 10 tries; a busy loop makes thousands.
    assert 2 <= attempts <= 12, attempts
