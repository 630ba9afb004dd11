"""``taskrpc bench-metrics``: throughput and latency with metrics on and off, in one run."""

from __future__ import annotations

from pathlib import Path

import click

from .bench import json_option, run_and_report, url_option


@click.command("bench-metrics")
@url_option
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--seq-calls", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--pipelined-calls", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--in-flight", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "-P",
    "--pool",
    type=click.Choice(["solo", "threads", "processes"]),
    default="solo",
    show_default=True,
    help="Both workers' pool.",
)
@json_option
def bench_metrics(
    url: str,
    rounds: int,
    seq_calls: int,
    pipelined_calls: int,
    in_flight: int,
    pool: str,
    json_path: Path | None,
) -> None:
    """What metrics cost: two workers, with and without --metrics-port (and a client with
    and without ClientMetrics), interleaved over rounds. Needs taskrpc[metrics]."""
    from ..benchmarking.metrics_cost import run_metrics_cost

    run_and_report(
        lambda progress: run_metrics_cost(
            url,
            rounds=rounds,
            seq_calls=seq_calls,
            pipelined_calls=pipelined_calls,
            in_flight=in_flight,
            pool=pool,
            progress=progress,
        ),
        json_path,
    )
