"""Fan-out against RabbitMQ: map, starmap, gather, as_completed, sync and asyncio."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from taskrpc import (
    InvalidArguments,
    RemoteError,
    TimeoutError,
    as_completed,
    as_completed_async,
    gather,
    gather_async,
)

pytestmark = pytest.mark.broker


class Gauge:
    """How many runs were going on at once, at most."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


@pytest.fixture
def tasks(rpc_app, start_worker):
    gauge = Gauge()

    @rpc_app.task(name="square")
    def square(x: int) -> int:
        with gauge:
            time.sleep(0.02)
        if x < 0:
            raise ValueError(f"negative: {x}")
        return x * x

    @rpc_app.task(name="nap")
    def nap(seconds: float, label: str) -> str:
        time.sleep(seconds)
        return label

    start_worker(rpc_app, pool="threads", concurrency=6)
    return square, nap, gauge


def test_map_returns_results_in_order_with_a_bounded_number_in_flight(tasks):
    square, _, gauge = tasks
    assert square.map(range(12), max_in_flight=2, timeout=30) == [x * x for x in range(12)]
    assert gauge.most <= 2


def test_starmap_collects_errors_in_place_or_raises_the_first(tasks):
    square, nap, _ = tasks
    results = square.starmap([(1,), (-2,), (3,)], return_exceptions=True, timeout=30)
    assert results[0] == 1 and results[2] == 9
    assert isinstance(results[1], RemoteError) and "negative: -2" in str(results[1])
    with pytest.raises(RemoteError, match="negative: -5"):
        square.map([4, -5, 6], timeout=30)
    mixed = nap.starmap([(0, "a"), ("x", "b")], return_exceptions=True, timeout=30)
    assert mixed[0] == "a" and isinstance(mixed[1], InvalidArguments)  # checked before sending


def test_one_overall_timeout_bounds_the_whole_map(tasks):
    _, nap, _ = tasks
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="overall 0.5 s"):
        nap.starmap([(2, "slow"), (0, "fast")], timeout=0.5)
    assert time.monotonic() - started < 4
    results = nap.starmap([(2, "slow"), (0, "fast")], timeout=0.5, return_exceptions=True)
    assert isinstance(results[0], TimeoutError) and results[1] == "fast"


def test_gather_and_as_completed_wait_on_handles_already_sent(tasks):
    _, nap, _ = tasks
    handles = [nap.delay(0.6, "slow"), nap.delay(0, "fast")]
    assert [h.get() for h in as_completed(handles, timeout=20)] == ["fast", "slow"]
    assert gather(handles, timeout=20) == ["slow", "fast"]
    with pytest.raises(TimeoutError, match="1 call"):
        list(as_completed([nap.delay(2, "late")], timeout=0.3))


def test_the_asyncio_twins(tasks):
    square, nap, gauge = tasks

    async def main() -> None:
        assert await square.map_async(range(8), max_in_flight=3, timeout=30) == [
            x * x for x in range(8)
        ]
        assert gauge.most <= 3
        errors = await square.starmap_async([(2,), (-1,)], return_exceptions=True, timeout=30)
        assert errors[0] == 4 and isinstance(errors[1], RemoteError)
        calls = [await nap.send_async((0.6, "slow")), await nap.send_async((0, "fast"))]
        order = [await call async for call in as_completed_async(calls, timeout=20)]
        assert order == ["fast", "slow"]
        assert await gather_async(calls, timeout=20) == ["slow", "fast"]
        with pytest.raises(TimeoutError):
            await nap.starmap_async([(2, "slow")], timeout=0.3)

    asyncio.run(main())
