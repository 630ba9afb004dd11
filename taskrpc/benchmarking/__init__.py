"""The benchmark behind ``taskrpc bench``: taskrpc against a raw-kombu baseline, same run.

Modules: ``baseline`` (the raw-kombu server and client), ``tasks`` (the app the worker
serves), ``servers`` (starting and stopping both servers), ``drivers`` (the measuring
loops), ``report`` (figures, table, JSON), ``runner`` (rounds and warm-up). Beside it,
``memory`` (``taskrpc bench-memory``: a client's RSS over many calls) and ``scaling``
(``taskrpc bench-scaling``: CPU-bound throughput by processes pool size).

Example:
    >>> from taskrpc.benchmarking import BenchConfig, run_benchmark
    >>> results = run_benchmark(BenchConfig(rounds=1))  # doctest: +SKIP
    >>> print(results.table())  # doctest: +SKIP
"""

from .drivers import BenchmarkError
from .report import Results, Stats
from .runner import BenchConfig, run_benchmark

__all__ = ["BenchConfig", "BenchmarkError", "Results", "Stats", "run_benchmark"]
