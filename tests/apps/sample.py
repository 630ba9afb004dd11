"""Tasks the integration tests serve from real worker processes.

The queue comes from ``TASKRPC_DEFAULT_QUEUE`` and the broker from ``TASKRPC_BROKER_URL``,
so every test isolates itself on its own queue.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import BaseModel

from taskrpc import (
    App,
    Middleware,
    RetryPolicy,
    SoftTimeLimitExceeded,
    TimeoutPolicy,
    current_request,
)

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


class Flaky(Exception):
    """A retryable failure."""


@app.task(name="flaky", retry=RetryPolicy(retry_on=(Flaky,), max_retries=3, backoff=0.05))
def flaky(marker: str, failures: int) -> dict:
    """Fail with Flaky ``failures`` times (counted in ``marker``), then succeed."""
    with Path(marker).open("a") as f:
        f.write("run\n")
    runs = len(Path(marker).read_text().splitlines())
    if runs <= failures:
        raise Flaky(f"run {runs}")
    context = current_request()
    return {"runs": runs, "retries": context.retries, "last_error": context.last_error}


@app.task(name="broken", retry=RetryPolicy(retry_on=(Flaky,), max_retries=3, backoff=0.05))
def broken(marker: str) -> None:
    """Fail with a non-retryable error."""
    with Path(marker).open("a") as f:
        f.write("run\n")
    raise ValueError("not retryable")


@app.task(name="soft_limited", timeouts=TimeoutPolicy(soft_limit=0.3, hard_limit=5))
def soft_limited(catch: bool) -> str:
    try:
        time.sleep(3)
    except SoftTimeLimitExceeded:
        if catch:
            return "cleaned up"
        raise
    return "finished"


@app.task(name="hard_limited", timeouts=TimeoutPolicy(hard_limit=0.5))
def hard_limited(seconds: float) -> float:
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # ignores signals: only a kill stops it
        time.sleep(0.01)
    return seconds


class CrashAfterReply(Middleware):
    """Kill the worker between publishing a reply and acking its request."""

    def after_reply(self, request_id: str, task: str) -> None:
        if task == "add":
            os._exit(1)


if os.environ.get("SAMPLE_CRASH_AFTER_REPLY"):
    app.add_middleware(CrashAfterReply())


@app.task(name="slow_add")
def slow_add(a: int, b: int, seconds: float = 0.01) -> int:
    time.sleep(seconds)
    return a + b


@app.task(name="echo_pid", idempotent=True)
def echo_pid(value: str, seconds: float = 0.0) -> tuple[int, str]:
    """Sleep, then return ``(pid, value)``: which worker answered, and the value intact."""
    time.sleep(seconds)
    return os.getpid(), value
