"""Tasks for the Celery-style job tests: delayed arrivals, periodic ticks, priorities."""

from __future__ import annotations

import time

from taskrpc import App

app = App("jobs")


@app.task(name="arrival")
def arrival(n: int) -> float:
    """When request ``n`` reached the worker (seconds since the epoch)."""
    return time.time()


@app.periodic(every=0.5)
@app.task(name="heartbeat")
def heartbeat() -> None:
    """A periodic task; the beat tests read its requests straight from the queue."""
