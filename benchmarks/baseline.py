"""Raw-kombu ping-pong baseline; moved to :mod:`taskrpc.benchmarking.baseline`.

Kept so that ``from baseline import serve, BaselineClient`` still works from this
directory. To measure it, run ``python benchmarks/bench.py`` (or ``taskrpc bench``),
which runs it interleaved with taskrpc.
"""

from taskrpc.benchmarking.baseline import BaselineClient, fib_iter, serve

__all__ = ["BaselineClient", "fib_iter", "serve"]
