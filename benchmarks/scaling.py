"""Does CPU-bound work scale with the processes pool? The same as ``taskrpc bench-scaling``.

    python benchmarks/scaling.py --pools 1,2 --rounds 3 --json scaling.json

Runs a ``taskrpc worker -P processes -c K`` per pool size, all at once, calls a ~30 ms
CPU-bound task on each in alternating rounds, and prints the throughputs and their ratio.
The engine lives in :mod:`taskrpc.benchmarking.scaling`; this script is kept for running
from a checkout.
"""

from __future__ import annotations

from taskrpc.cli.bench_suites import bench_scaling


def main() -> None:
    """Run ``taskrpc bench-scaling`` with this script's arguments."""
    bench_scaling(prog_name="benchmarks/scaling.py")


if __name__ == "__main__":
    main()
