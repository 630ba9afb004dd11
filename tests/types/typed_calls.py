"""Calls a type checker must accept, with the types it must infer (checked by mypy --strict).

This module is never run by pytest; ``test_types.py`` hands it to mypy.
"""

from __future__ import annotations

from typing import assert_type

from taskrpc import App, AsyncResult, Task
from taskrpc.client.aio import AsyncCall

app = App("typed", broker_url="memory://")


@app.task
def add(x: int, y: int = 0) -> int:
    return x + y


@app.task(queue="text")
def shout(text: str, *, times: int = 1) -> str:
    return text.upper() * times


@app.task
def double(x: int) -> int:
    return 2 * x


@app.task
async def fetch(url: str) -> bytes:
    return url.encode()


def sync_calls() -> None:
    assert_type(add.delay(1, 2), AsyncResult[int])
    assert_type(add.delay(1, y=2).get(timeout=1), int)
    assert_type(add(1, 2), int)
    assert_type(add.run(1), int)
    assert_type(shout.delay("a", times=3).get(), str)
    assert_type(add.with_options(timeout=5, queue="q").delay(1, 2), AsyncResult[int])
    assert_type(add.apply_async((1, 2), timeout=5), AsyncResult[int])
    assert_type(fetch.delay("x").get(), bytes)
    assert_type(fetch.run("x"), bytes)
    assert_type(double.map([1, 2, 3]), list[int])
    assert_type(add.starmap([(1, 2)]), list[int])
    task: Task[[int, int], int] = add
    assert_type(task.delay(3, 4).get(), int)


async def async_calls() -> None:
    assert_type(await add.call_async(1, 2), int)
    assert_type(await fetch.call_async("x"), bytes)
    assert_type(await fetch("x"), bytes)
    assert_type(await add.send_async((1, 2)), AsyncCall[int])
    assert_type(await add.with_options(timeout=1).call_async(1), int)
    assert_type(await double.map_async([1, 2]), list[int])
