"""Waiting on a task from inside a task on the same worker: refused unless allowed."""

from __future__ import annotations

import pytest

from taskrpc import RemoteError

pytestmark = pytest.mark.broker


@pytest.fixture
def tasks(rpc_app, start_worker):
    @rpc_app.task(name="inner")
    def inner(x: int) -> int:
        return x + 1

    @rpc_app.task(name="outer")
    def outer(x: int, allow: bool = False) -> int:
        return inner.delay(x).get(timeout=5, allow_nested=allow)

    @rpc_app.task(name="outer_async")
    async def outer_async(x: int) -> int:
        return await inner.call_async(x)

    start_worker(rpc_app, pool="threads", concurrency=2)
    return outer, outer_async


def test_a_task_waiting_on_its_own_workers_queue_fails_at_once_with_a_clear_error(tasks):
    outer, outer_async = tasks
    with pytest.raises(RemoteError, match="can deadlock the worker's pool"):
        outer.delay(1).get(timeout=10)
    with pytest.raises(RemoteError, match="allow_nested=True"):
        outer_async.delay(1).get(timeout=10)


def test_the_wait_can_be_allowed_and_outside_a_task_nothing_changes(tasks):
    outer, _ = tasks
    assert outer.delay(1, allow=True).get(timeout=10) == 2
    assert outer.run(2, allow=True) == 3  # run here: not inside a worker's task
