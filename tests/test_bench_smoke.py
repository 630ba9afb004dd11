"""``taskrpc bench`` runs end to end on a real broker and writes its JSON report.

A smoke test: tiny counts, one round, and no assertion on the figures themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from taskrpc.benchmarking.report import Stats, percentile

pytestmark = pytest.mark.timeout(120)

FIGURES = {"p50_ms", "p99_ms", "calls_per_s"}


@pytest.mark.broker
def test_bench_writes_medians_for_both_phases_and_both_contestants(
    broker_url: str, tmp_path: Path
) -> None:
    report = tmp_path / "bench.json"
    command = [
        sys.executable,
        "-m",
        "taskrpc",
        "bench",
        "--url",
        broker_url,
        "--rounds",
        "1",
        "--seq-calls",
        "20",
        "--pipelined-calls",
        "50",
        "--in-flight",
        "10",
        "--warmup",
        "5",
        "--json",
        str(report),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90)

    assert done.returncode == 0, done.stderr
    assert "sequential p50 ms" in done.stdout
    document = json.loads(report.read_text())
    for phase in ("sequential", "pipelined"):
        for contestant in ("baseline", "taskrpc"):
            figures = document[phase][contestant]
            assert set(figures) == FIGURES
            assert all(isinstance(v, float) and v > 0 for v in figures.values())
        assert document[phase]["ratio"] > 0
    assert isinstance(document["client_rss_mb"], float) and document["client_rss_mb"] > 0
    assert ":**@" in document["config"]["url"] or "@" not in document["config"]["url"]


def test_percentiles_are_nearest_rank() -> None:
    ordered = [float(i) for i in range(1, 101)]

    assert percentile(ordered, 0.50) == 51.0
    assert percentile(ordered, 0.99) == 100.0
    assert percentile([7.0], 0.99) == 7.0


def test_stats_median_takes_each_figure_separately() -> None:
    rounds = [Stats(1.0, 9.0, 300.0), Stats(3.0, 5.0, 100.0), Stats(2.0, 7.0, 200.0)]

    assert Stats.median(rounds) == Stats(2.0, 7.0, 200.0)


def test_the_bench_runs_taskrpc_at_the_baselines_prefetch_by_default():
    from taskrpc.benchmarking.baseline import PREFETCH
    from taskrpc.cli.bench import bench

    option = next(p for p in bench.params if p.name == "prefetch")
    assert option.default == PREFETCH
