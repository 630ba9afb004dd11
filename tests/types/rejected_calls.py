"""Calls a type checker must reject: every line marked ``# rejected`` must be an error
under ``mypy --strict``, and no other line may be one (``test_types.py`` checks both).

This module is never run by pytest; ``test_types.py`` hands it to mypy.
"""

from __future__ import annotations

from taskrpc import App

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


def wrong_calls() -> None:
    add.delay("x", "y")  # rejected
    add.delay(1, 2, 3)  # rejected
    add.delay(1, yy=2)  # rejected
    add.delay()  # rejected
    add.run("1")  # rejected
    add.with_options(timeout=5).delay("x")  # rejected
    add.with_options(retry=None)  # rejected
    add.apply_async((1, 2), retry=None)  # rejected
    shout.delay("a", 3)  # rejected
    fetch.delay(b"x")  # rejected
    add("x")  # rejected
    shout.map([1])  # rejected
    double.map(["x"])  # rejected


def wrong_results() -> None:
    text: str = add.delay(1, 2).get()  # rejected
    number: int = shout.delay("a").get()  # rejected
    data: str = fetch.run("x")  # rejected
    texts: list[str] = double.map([1])  # rejected
    print(text, number, data, texts)


async def wrong_async() -> None:
    await add.call_async("x")  # rejected
    text: str = await add.call_async(1)  # rejected
    result: bytes = fetch("x")  # rejected
    print(text, result)
