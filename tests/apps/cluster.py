"""Tasks the quorum-queue and cluster tests serve from real worker processes.

Broker, queue, queue type, delivery limit and dead-letter queue come from the
``TASKRPC_*`` environment, so each test isolates itself on its own queues.
"""

from __future__ import annotations

import os
from pathlib import Path

from taskrpc import App, current_request

app = App("cluster")


@app.task(name="add", idempotent=True)
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="count")
def count(marker: str, n: int) -> int:
    """Append ``n`` to ``marker`` (one line per execution); return ``n``."""
    with Path(marker).open("a") as f:
        f.write(f"{n}\n")
    return n


@app.task(name="count_idempotent", idempotent=True)
def count_idempotent(marker: str, n: int) -> int:
    """As ``count``, but safe to send again."""
    return count.fn(marker, n)


@app.task(name="deliveries")
def deliveries(marker: str) -> dict:
    """Kill the worker on the first delivery (``marker`` absent), then report the context."""
    if not Path(marker).exists():
        Path(marker).write_text("died\n")
        os._exit(17)
    context = current_request()
    assert context is not None
    return {"delivery_count": context.delivery_count, "redelivered": context.redelivered}


@app.task(name="poison")
def poison(marker: str) -> None:
    """Kill the worker process, every time (counted in ``marker``)."""
    with Path(marker).open("a") as f:
        f.write(f"{os.getpid()}\n")
    os._exit(17)
