"""A solo worker holds the replies of jobs run back to back for one write; none of them
waits for a long job behind it (real worker process, real broker)."""

from __future__ import annotations

import pytest

from taskrpc import App


@pytest.fixture
def app(rpc_app: App) -> App:
    return rpc_app


def test_a_reply_goes_out_before_a_long_job_of_another_task_starts(app, spawn_worker):
    spawn_worker("--pool", "solo")
    assert app.send_task("add", [0, 0]).get(timeout=10) == 0  # the worker is warm
    quick = app.send_task("add", [1, 2])
    slow = app.send_task("slow_add", [3, 4], {"seconds": 4.0})
    assert quick.get(timeout=3) == 3
    assert not slow.ready()  # the quick reply did not wait for it
    assert slow.get(timeout=10) == 7


def test_a_reply_held_behind_an_unexpectedly_long_job_goes_out_within_the_keepers_grace(
    app, spawn_worker
):
    spawn_worker("--pool", "solo")
    assert app.send_task("slow_add", [0, 0], {"seconds": 0}).get(timeout=10) == 0  # quick
    quick = app.send_task("slow_add", [1, 2], {"seconds": 0})
    slow = app.send_task("slow_add", [3, 4], {"seconds": 5.0})  # the same task, now long
    assert quick.get(timeout=3.5) == 3  # sent by the keeper after at most 1 s, not 5
    assert not slow.ready()
    assert slow.get(timeout=10) == 7
