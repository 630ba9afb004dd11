"""The asyncio client against RabbitMQ: results, errors, concurrency, cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import BaseModel

from taskrpc import AsyncClient, InvalidArguments, RemoteError, TimeoutError, UnknownTask

pytestmark = pytest.mark.broker


class Point(BaseModel):
    x: int
    y: int


@pytest.fixture
def tasks(rpc_app, start_worker):
    @rpc_app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @rpc_app.task(name="move")
    async def move(point: Point, dx: int = 0) -> Point:  # an async task, served by the worker
        await asyncio.sleep(0)
        return Point(x=point.x + dx, y=point.y)

    @rpc_app.task(name="fail")
    def fail() -> None:
        raise ValueError("no")

    @rpc_app.task(name="sleep")
    def sleep(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    start_worker(rpc_app, pool="threads", concurrency=4)
    return add, move, fail, sleep


def test_call_async_returns_the_result_and_models(tasks):
    add, move, *_ = tasks

    async def main():
        assert await add.call_async(1, 2) == 3
        assert await move.call_async(Point(x=1, y=1), dx=2) == Point(x=3, y=1)

    asyncio.run(main())


def test_hundreds_of_concurrent_calls_from_one_loop(tasks, rpc_app):
    add, *_ = tasks

    async def main():
        results = await asyncio.gather(*(add.call_async(i, i) for i in range(300)))
        assert results == [2 * i for i in range(300)]

    asyncio.run(main())
    assert rpc_app.async_client.duplicate_replies == 0


def test_errors_are_typed_as_with_the_sync_client(tasks, rpc_app):
    add, _, fail, _ = tasks

    async def main():
        with pytest.raises(RemoteError, match="ValueError: no"):
            await fail.call_async()
        with pytest.raises(InvalidArguments):
            await add.call_async("x", 1)
        with pytest.raises(UnknownTask):
            await rpc_app.async_client.call("missing")

    asyncio.run(main())


def test_a_wait_times_out_without_blocking_the_loop(tasks):
    *_, sleep = tasks

    async def main():
        call = await sleep.send_async((2,))
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.ensure_future(ticker())
        with pytest.raises(TimeoutError):
            await call.get(timeout=0.3)
        ticking.cancel()
        assert ticks > 5  # the loop kept running while we waited
        assert await call.get(timeout=10) == 2

    asyncio.run(main())


def test_cancelling_a_waiting_call_stops_the_wait_and_drops_the_late_reply(tasks, rpc_app):
    *_, sleep = tasks

    async def main():
        waiting = asyncio.ensure_future(sleep.call_async(0.5))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        client = rpc_app.async_client
        deadline = time.monotonic() + 10
        while client.unknown_replies < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert client.unknown_replies == 1 and client.pending == 0

    asyncio.run(main())


def test_a_standalone_async_client_as_a_context_manager(tasks, rpc_app):
    async def main():
        async with AsyncClient(rpc_app) as client:
            assert await client.call("add", 20, 22) == 42

    asyncio.run(main())
