"""Rate limits on a real worker: the limit holds, and other tasks are not held up."""

from __future__ import annotations

import time

import pytest

from taskrpc import gather

pytestmark = pytest.mark.broker


@pytest.mark.parametrize("pool", ["threads", "processes"])
def test_requests_over_the_limit_wait_without_holding_up_other_tasks(rpc_app, start_worker, pool):
    @rpc_app.task(name="limited", rate_limit="5/s")
    def limited(n: int) -> float:
        return time.time()

    @rpc_app.task(name="free")
    def free(n: int) -> float:
        return time.time()

    # concurrency 2, prefetch 2: fifteen held requests would fill it many times over.
    start_worker(rpc_app, pool=pool, concurrency=2, prefetch=2)
    held = [limited.delay(n) for n in range(15)]
    time.sleep(0.3)  # let the worker take (and hold) the limited ones first
    free_done = gather([free.delay(n) for n in range(6)], timeout=30)
    limited_done = gather(held, timeout=60)
    starts = sorted(limited_done)
    # 5/s: a token every 0.2 s, the first one at once; dispatch jitter aside, the 15
    # runs span 2.8 s at least.
    assert starts[-1] - starts[0] >= 2.6, starts
    # The free ones were sent 0.3 s in; the limited ones take 3 s in all.
    assert max(free_done) < starts[9], "free requests waited behind limited ones"


def test_a_rate_limit_on_the_solo_pool_waits_inline(rpc_app):
    from taskrpc import Worker

    @rpc_app.task(name="limited", rate_limit="10/s")
    def limited(n: int) -> float:
        return time.time()

    worker = Worker(rpc_app, pool="solo")
    thread = worker.start_in_thread()
    try:
        starts = sorted(gather([limited.delay(n) for n in range(4)], timeout=30))
    finally:
        worker.stop()
        thread.join(10)
    assert starts[-1] - starts[0] >= 0.25, starts  # 10/s: three gaps of 0.1 s
