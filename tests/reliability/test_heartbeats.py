"""Heartbeats against the real broker: they go on while a task holds the worker."""

from __future__ import annotations

import time

import pytest

from taskrpc import App

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


@pytest.mark.parametrize(
    ("pool", "work"),
    [("solo", "sleep"), ("solo", "spin"), ("threads", "spin")],
)
def test_heartbeats_go_on_while_a_task_holds_the_worker(
    broker_url, unique_queue, start_worker, pool, work
):
    """With a 1 s heartbeat, RabbitMQ drops a connection silent for about 2 s: a task of
    4 s must not silence the worker's (the solo pool's job runs off the connection's
    thread; a CPU-bound thread yields the GIL every switch interval)."""
    app = App(
        "heartbeats",
        broker_url=broker_url,
        default_queue=unique_queue,
        default_timeout=30,
        broker_heartbeat=1,
    )
    runs: list[float] = []

    @app.task
    def hold(seconds: float) -> int:
        runs.append(seconds)
        if work == "sleep":
            time.sleep(seconds)
        else:
            end = time.monotonic() + seconds
            while time.monotonic() < end:  # pure Python: holds the GIL between switches
                pass
        return len(runs)

    try:
        worker = start_worker(app, pool=pool, concurrency=1)
        loop = worker._loop
        assert loop is not None and loop.transport.heartbeat == 1
        assert hold.delay(4.0).get(timeout=30) == 1
        assert worker._loop is loop  # the same connection throughout: never lost
        assert hold.delay(0.0).get(timeout=10) == 2  # and it still serves
    finally:
        app.close()
