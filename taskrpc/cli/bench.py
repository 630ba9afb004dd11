"""``taskrpc bench``: latency and throughput against a raw-kombu baseline, in one run."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, Protocol, TextIO

import click

from . import EXIT_BROKER, EXIT_INTERRUPTED, EXIT_OK

#: The benchmark could not run (a server died or answered wrongly).
EXIT_BENCH_FAILED = 1

_DEFAULT_URL = "amqp://guest:guest@localhost:5672//"

#: ``--url`` (or ``--broker``): the broker every benchmark command runs against.
url_option = click.option(
    "--url",
    "--broker",
    "url",
    metavar="URL",
    envvar="TASKRPC_BROKER_URL",
    default=_DEFAULT_URL,
    show_default=True,
    show_envvar=True,
    help="Broker URL, or the nodes of a cluster separated by ';'.",
)
#: ``--json PATH``: where a benchmark command also writes its figures.
json_option = click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the figures to this file as JSON.",
)


@click.command()
@url_option
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Rounds; the figures are medians over rounds.",
)
@click.option(
    "--seq-calls",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Calls per round in the sequential phase (one in flight).",
)
@click.option(
    "--pipelined-calls",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Calls per round in the pipelined phase.",
)
@click.option(
    "--in-flight",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Calls outstanding at once in the pipelined phase.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Unmeasured calls per contestant before the first round.",
)
@click.option(
    "-P",
    "--pool",
    type=click.Choice(["solo", "threads", "processes"]),
    default="solo",
    show_default=True,
    help="The taskrpc worker's pool.",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    help="The taskrpc worker's concurrency (default: the pool's).",
)
@click.option(
    "--prefetch",
    type=click.IntRange(min=1),
    default=100,  # benchmarking.baseline.PREFETCH, not imported: commands import lazily
    show_default=True,
    help="The taskrpc worker's prefetch; the default is the baseline server's, like for like.",
)
@click.option(
    "--direct-reply-to/--callback-queue",
    envvar="TASKRPC_DIRECT_REPLY_TO",
    default=False,
    show_default=True,
    show_envvar=True,
    help="How the taskrpc client gets its replies: RabbitMQ's direct reply-to, or its own "
    "callback queue. The baseline always uses an exclusive reply queue.",
)
@click.option(
    "--queue-type",
    type=click.Choice(["classic", "quorum"]),
    default="classic",
    show_default=True,
    help="Type of both servers' queues; quorum needs RabbitMQ 3.8 or later.",
)
@json_option
def bench(
    url: str,
    rounds: int,
    seq_calls: int,
    pipelined_calls: int,
    in_flight: int,
    warmup: int,
    pool: str,
    concurrency: int | None,
    prefetch: int | None,
    direct_reply_to: bool,
    queue_type: str,
    json_path: Path | None,
) -> None:
    """Benchmark taskrpc against raw kombu on the same broker, interleaved over rounds.

    Starts a "taskrpc worker" and a raw-kombu server, each on a fresh queue, and calls
    fib(30) on both: one call at a time (p50/p99 latency), then with --in-flight calls
    outstanding (throughput). Prints medians over rounds and the taskrpc/baseline ratios.
    Exits 1 if a server fails, 4 if the broker is unreachable.
    """
    from ..benchmarking import BenchConfig, run_benchmark
    from ..settings import safe_url

    config = BenchConfig(
        url=url,
        rounds=rounds,
        seq_calls=seq_calls,
        pipelined_calls=pipelined_calls,
        in_flight=in_flight,
        warmup=warmup,
        pool=pool,
        concurrency=concurrency,
        prefetch=prefetch,
        direct_reply_to=direct_reply_to,
        queue_type=queue_type,
    )
    click.echo(f"taskrpc bench on {safe_url(url)}: starting the servers", err=True)
    run_and_report(lambda progress: run_benchmark(config, progress), json_path)


class Report(Protocol):
    """What a benchmark run returns: figures as a table and as a JSON document."""

    def table(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


def run_and_report(run: Callable[[ProgressBar], Report], json_path: Path | None) -> NoReturn:
    """Run a benchmark with a progress bar, print its table, write its JSON; exit.

    Exits 0, or 1 if a server failed, 4 if the broker is unreachable, 130 on Ctrl-C or
    SIGTERM (the benchmark has stopped its servers and deleted its queues by then).
    """
    from ..benchmarking import BenchmarkError
    from ..exceptions import BrokerError

    progress = ProgressBar(sys.stderr)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up on SIGTERM as on Ctrl-C
    try:
        results = run(progress)
    except KeyboardInterrupt:
        progress.close()
        click.echo("interrupted; servers stopped and queues deleted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BenchmarkError as exc:
        progress.close()
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BENCH_FAILED)
    except (BrokerError, OSError) as exc:
        progress.close()
        click.echo(f"error: broker: {exc}", err=True)
        sys.exit(EXIT_BROKER)
    progress.close()
    click.echo(results.table())
    if json_path is not None:
        json_path.write_text(json.dumps(results.to_json(), indent=2) + "\n")
    sys.exit(EXIT_OK)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class ProgressBar:
    """A one-line progress bar on a terminal; one line per phase elsewhere (logs, CI)."""

    #: Seconds between redraws.
    INTERVAL = 0.1
    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._label = ""
        self._drawn = 0.0

    def __call__(self, done: int, total: int, label: str) -> None:
        if not self._tty:
            if label != self._label:
                self._label = label
                print(f"  {label}", file=self._stream, flush=True)
            return
        now = time.monotonic()
        if label == self._label and done < total and now - self._drawn < self.INTERVAL:
            return
        self._label, self._drawn = label, now
        filled = self.WIDTH * done // max(total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self._stream.write(f"\r[{bar}] {100 * done // max(total, 1):3d}%  {label:<40}")
        self._stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self._tty and self._label:
            self._stream.write("\n")
            self._stream.flush()
        self._label = ""
