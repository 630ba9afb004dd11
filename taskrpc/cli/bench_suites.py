"""``taskrpc bench-memory`` and ``taskrpc bench-scaling``: the benchmarks beside the latency one.

Each starts its own ``taskrpc worker`` process(es) on fresh queues, prints a table and,
with ``--json``, writes the figures; exit codes as for ``taskrpc bench``.
"""

from __future__ import annotations

from pathlib import Path

import click

from .bench import json_option, run_and_report, url_option


@click.command("bench-memory")
@url_option
@click.option(
    "--calls",
    type=click.IntRange(min=1),
    default=200_000,
    show_default=True,
    help="Measured calls, after the warm-up.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=20_000,
    show_default=True,
    help="Unmeasured calls first; RSS is read once they are done.",
)
@click.option(
    "--in-flight",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Calls outstanding at once.",
)
@click.option(
    "--sample-every",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Calls between two RSS samples.",
)
@click.option(
    "-P",
    "--pool",
    type=click.Choice(["solo", "threads", "processes"]),
    default="solo",
    show_default=True,
    help="The worker's pool.",
)
@click.option(
    "--prefetch",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="The worker's prefetch.",
)
@click.option(
    "--direct-reply-to/--callback-queue",
    envvar="TASKRPC_DIRECT_REPLY_TO",
    default=False,
    show_default=True,
    show_envvar=True,
    help="How the client gets its replies.",
)
@click.option(
    "--trace/--no-trace",
    default=False,
    show_default=True,
    help="Also run tracemalloc (slower) and list the lines whose allocations grew most.",
)
@json_option
def bench_memory(
    url: str,
    calls: int,
    warmup: int,
    in_flight: int,
    sample_every: int,
    pool: str,
    prefetch: int,
    direct_reply_to: bool,
    trace: bool,
    json_path: Path | None,
) -> None:
    """Check that a client's memory stays flat over many pipelined calls of fib(30).

    Reads the client's RSS (and the worker's) after the warm-up, every --sample-every
    calls and at the end; the target is a growth under 10 MB.
    """
    from ..benchmarking.memory import MemoryConfig, run_memory

    config = MemoryConfig(
        url=url,
        calls=calls,
        warmup=warmup,
        in_flight=in_flight,
        sample_every=sample_every,
        pool=pool,
        prefetch=prefetch,
        direct_reply_to=direct_reply_to,
        trace=trace,
    )
    run_and_report(lambda progress: run_memory(config, progress), json_path)


def _pools(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        pools = tuple(int(item) for item in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list of integers") from None
    if len(pools) < 2 or min(pools) < 1:
        raise click.BadParameter("give at least two pool sizes, each at least 1")
    return pools


@click.command("bench-scaling")
@url_option
@click.option(
    "--pools",
    default="1,2",
    show_default=True,
    callback=_pools,
    help="Comma-separated process pool sizes; the ratio is the last's over the first's.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Rounds, alternating the pools' order; the figures are medians.",
)
@click.option(
    "--calls",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Calls per pool per round.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help="Unmeasured calls per pool first.",
)
@click.option(
    "--in-flight",
    type=click.IntRange(min=1),
    help="Calls outstanding at once (default: twice the largest pool).",
)
@click.option(
    "--prefetch",
    type=click.IntRange(min=1),
    help="The workers' prefetch (default: each worker's own, its concurrency x "
    "TASKRPC_PREFETCH_MULTIPLIER, 4 unless set).",
)
@click.option(
    "-n",
    type=click.IntRange(min=1),
    default=400_000,
    show_default=True,
    help="Iterations of the CPU-bound task per call (about 70 ns each).",
)
@json_option
def bench_scaling(
    url: str,
    pools: tuple[int, ...],
    rounds: int,
    calls: int,
    warmup: int,
    in_flight: int | None,
    prefetch: int | None,
    n: int,
    json_path: Path | None,
) -> None:
    """Compare the throughput of process pools of different sizes on CPU-bound calls.

    The target is at least 1.7x the throughput of a pool of 1 with a pool of 2.
    """
    from ..benchmarking.scaling import ScalingConfig, run_scaling

    config = ScalingConfig(
        url=url,
        pools=pools,
        rounds=rounds,
        calls=calls,
        warmup=warmup,
        in_flight=in_flight,
        prefetch=prefetch,
        n=n,
    )
    run_and_report(lambda progress: run_scaling(config, progress), json_path)
