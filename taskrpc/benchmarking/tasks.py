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
#: Name of the CPU-bound task of the scaling benchmark.
HEAVY_TASK_NAME = "taskrpc.bench.heavy_fib"
#: Modulus of :func:`heavy_fib`: the Mersenne prime 2**61 - 1, so the result stays small.
HEAVY_MODULUS = (1 << 61) - 1


def fib(n: int) -> int:
    """Return the n-th Fibonacci number by iteration (fib(30) = 832040)."""
    return fib_iter(n)


def heavy_fib(n: int) -> int:
    """Return fib(n) modulo :data:`HEAVY_MODULUS`, by n iterations: pure CPU, no I/O.

    Deliberately slow (about 70 ns per step: n = 400,000 takes some 30 ms) and holding
    the GIL throughout, so only separate processes run two at once. The reply stays small.
    """
    a, b = 0, 1
    for _ in range(n):
        a, b = b, (a + b) % HEAVY_MODULUS
    return a


def make_app(**options: Any) -> App:
    """A fresh App serving :func:`fib` as :data:`TASK_NAME` and :func:`heavy_fib` as
    :data:`HEAVY_TASK_NAME`; ``options`` go to :class:`App`."""
    app = App("taskrpc-bench", **options)
    app.task(name=TASK_NAME)(fib)
    app.task(name=HEAVY_TASK_NAME)(heavy_fib)
    return app


def bench_task(app: App, name: str = TASK_NAME) -> Task[Any, Any]:
    """The benchmark task ``name`` of an app built by :func:`make_app`."""
    return app.tasks[name]


#: What the worker serves; its broker and queue come from the command line.
app = make_app()
