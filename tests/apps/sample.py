"""Tasks the integration tests serve from real worker processes.

The queue comes from ``TASKRPC_DEFAULT_QUEUE`` and the broker from ``TASKRPC_BROKER_URL``,
so every test isolates itself on its own queue.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import BaseModel

from taskrpc import App

app = App("sample")


class Point(BaseModel):
    x: int
    y: int


@app.task(name="add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="move")
def move(point: Point, dx: int = 0, dy: int = 0) -> Point:
    return Point(x=point.x + dx, y=point.y + dy)


@app.task(name="fail")
def fail(message: str) -> None:
    raise ValueError(message)


@app.task(name="pid")
def pid() -> int:
    return os.getpid()


@app.task(name="spin")
def spin(seconds: float) -> int:
    """Burn CPU (not sleep) for ``seconds``; returns the pid that did it."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return os.getpid()


@app.task(name="marked_sleep")
def marked_sleep(marker: str, seconds: float, value: int = 0) -> int:
    """Append a line to ``marker`` (counting runs), then sleep; returns ``value``."""
    with Path(marker).open("a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return value
