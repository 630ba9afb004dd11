"""Benchmark taskrpc against a raw-kombu baseline: the same as ``taskrpc bench``.

    python benchmarks/bench.py --rounds 3 --json bench.json

The engine lives in :mod:`taskrpc.benchmarking`, so installed users get it as
``taskrpc bench``; this script is kept for running from a checkout.
"""

from __future__ import annotations

from taskrpc.cli.bench import bench


def main() -> None:
    """Run ``taskrpc bench`` with this script's arguments."""
    bench(prog_name="benchmarks/bench.py")


if __name__ == "__main__":
    main()
