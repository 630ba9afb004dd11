"""The benchmark's task: the same iterative Fibonacci the baseline server runs.

Served by ``taskrpc worker taskrpc.benchmarking.tasks:app -Q QUEUE`` (the benchmark starts
that command itself). It goes through everything a production task does: request decoding,
argument validation, result validation and encoding, ack after the reply.
"""

from __future__ import annotations

from typing import Any

from ..app import App
from ..task import Task
from .baseline import fib_iter

#: Name the benchmark task is registered under, on both sides.
TASK_NAME = "taskrpc.bench.fib"


def fib(n: int) -> int:
    """Return the n-th Fibonacci number by iteration (fib(30) = 832040)."""
    return fib_iter(n)


def make_app(**options: Any) -> App:
    """A fresh App serving :func:`fib` as :data:`TASK_NAME`; ``options`` go to :class:`App`."""
    app = App("taskrpc-bench", **options)
    app.task(name=TASK_NAME)(fib)
    return app


def bench_task(app: App) -> Task[Any, Any]:
    """The benchmark task of an app built by :func:`make_app`."""
    return app.tasks[TASK_NAME]


#: What the worker serves; its broker and queue come from the command line.
app = make_app()
