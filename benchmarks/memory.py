"""Does a client keep flat memory over 200,000 calls? The same as ``taskrpc bench-memory``.

    python benchmarks/memory.py --calls 200000 --warmup 20000 --json memory.json

Pipelines fib(30) calls (100 in flight) against a ``taskrpc worker`` it starts itself
(solo pool, prefetch 100) and prints the client's RSS after the warm-up, along the way and
at the end; ``--trace`` adds tracemalloc's view of what grew. The engine lives in
:mod:`taskrpc.benchmarking.memory`; this script is kept for running from a checkout.
"""

from __future__ import annotations

from taskrpc.cli.bench_suites import bench_memory


def main() -> None:
    """Run ``taskrpc bench-memory`` with this script's arguments."""
    bench_memory(prog_name="benchmarks/memory.py")


if __name__ == "__main__":
    main()
