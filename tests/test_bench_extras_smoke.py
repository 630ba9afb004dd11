"""The memory and scaling benchmarks run end to end on a real broker and write their JSON.

Smoke tests: tiny counts, and no assertion on the figures themselves (they are timings
and memory sizes of a shared machine). Also: the latency benchmark's client really
uses direct reply-to when asked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from taskrpc.benchmarking.drivers import TaskrpcDriver
from taskrpc.benchmarking.tasks import HEAVY_MODULUS, heavy_fib
from taskrpc.transport.direct_reply import DIRECT_REPLY_TO

pytestmark = pytest.mark.timeout(120)

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
FIGURES = {"p50_ms", "p99_ms", "calls_per_s"}


def run_script(name: str, *args: str) -> dict[str, Any]:
    """Run ``benchmarks/<name>`` with ``args`` and ``--json``; return the document."""
    report = Path(f"{name}.json")
    command = [sys.executable, str(BENCHMARKS / name), *args, "--json", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(report.read_text())  # type: ignore[no-any-return]


@pytest.mark.broker
def test_the_memory_benchmark_reports_rss_after_warmup_and_at_the_end(
    broker_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    document = run_script(
        "memory.py",
        "--url",
        broker_url,
        "--calls",
        "300",
        "--warmup",
        "50",
        "--sample-every",
        "100",
        "--in-flight",
        "10",
    )

    for side in ("client", "worker"):
        figures = document[side]
        assert set(figures) == {"rss_after_warmup_mb", "rss_end_mb", "growth_mb"}
        assert figures["rss_after_warmup_mb"] > 0 and figures["rss_end_mb"] > 0
    assert [sample["calls"] for sample in document["samples"]] == [0, 100, 200, 300]
    assert isinstance(document["flat"], bool)
    assert document["limit_mb"] == 10.0
    assert document["top_growth"] == [] and document["traced_growth_kb"] is None
    assert document["config"]["calls"] == 300
    assert "guest@" not in document["config"]["url"]


@pytest.mark.broker
def test_the_memory_benchmark_with_trace_names_the_lines_that_grew(
    broker_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    document = run_script(
        "memory.py", "--url", broker_url, "--calls", "100", "--warmup", "20", "--trace"
    )

    assert isinstance(document["traced_growth_kb"], float)
    assert document["top_growth"], "tracemalloc reported nothing"
    for entry in document["top_growth"]:
        assert set(entry) == {"where", "size_kb", "count"}
        assert entry["where"].rpartition(":")[2].isdigit()  # file:line


@pytest.mark.broker
def test_the_scaling_benchmark_reports_each_pool_and_the_ratio(
    broker_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    document = run_script(
        "scaling.py",
        "--url",
        broker_url,
        "--rounds",
        "2",
        "--calls",
        "6",
        "--warmup",
        "1",
        "-n",
        "1000",
    )

    assert set(document["pools"]) == {"1", "2"}
    for figures in document["pools"].values():
        assert set(figures) == FIGURES
        assert all(isinstance(v, float) and v > 0 for v in figures.values())
    assert document["ratio"] > 0 and isinstance(document["met"], bool)
    assert document["target"] == 1.7 and document["task_ms"] > 0
    assert document["config"]["in_flight"] == 4  # twice the largest pool
    assert set(document["prefetch"]) == {"1", "2"}


@pytest.mark.broker
def test_the_bench_client_uses_direct_reply_to_when_asked(broker_url: str) -> None:
    driver = TaskrpcDriver(broker_url, "taskrpc.bench.unused", 30, 10.0, direct_reply_to=True)
    try:
        assert driver.app.settings.direct_reply_to
        assert driver.app.client._listener.wait_ready(10).startswith(DIRECT_REPLY_TO + ".")
    finally:
        driver.close()


def test_the_heavy_task_is_fibonacci_modulo_a_mersenne_prime() -> None:
    assert [heavy_fib(n) for n in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]
    assert heavy_fib(100) == 354224848179261915075 % HEAVY_MODULUS
