"""``taskrpc demo``: Fibonacci end to end, worker included, with no setup."""

from __future__ import annotations

import sys
import time

import click

from . import EXIT_OK, EXIT_TASK_FAILED
from .loading import setup_logging

#: The n the demo asks for: small, large, and one past the task's bound (an error).
DEMO_NS = (0, 1, 10, 30, 90, 1000)


@click.command()
@click.option(
    "--broker",
    metavar="URL",
    default="memory://",
    show_default=True,
    help="Broker to run on; the default needs no server.",
)
@click.option(
    "-l",
    "--loglevel",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
def demo(broker: str, loglevel: str) -> None:
    """Start a worker in this process and call the Fibonacci task through it."""
    from ..exceptions import InvalidArguments
    from ..fibonacci import MAX_N, app, fib
    from ..settings import safe_url
    from ..worker import Worker

    setup_logging(loglevel)
    app.configure(broker_url=broker)
    click.echo(f"taskrpc demo on {safe_url(broker)}: starting a worker in this process")
    worker = Worker(app, pool="threads", concurrency=2)
    worker.start_in_thread()
    try:
        for n in DEMO_NS:
            started = time.perf_counter()
            value = fib.delay(n).get(timeout=10)
            ms = (time.perf_counter() - started) * 1000
            shown = (
                str(value)
                if len(str(value)) <= 40
                else f"{str(value)[:20]}... ({len(str(value))} digits)"
            )
            click.echo(f"  fib({n}) = {shown}  [{ms:.1f} ms]")
        try:
            fib.delay(MAX_N + 1).get(timeout=10)
        except InvalidArguments as exc:
            reason = exc.errors()[0]["msg"]
            click.echo(f"  fib({MAX_N + 1}) refused before it was sent: {reason}")
        else:
            click.echo("  expected a validation error", err=True)
            sys.exit(EXIT_TASK_FAILED)
    finally:
        worker.stop()
        app.close()
    click.echo("done: every valid call went through the broker to the worker and back")
    sys.exit(EXIT_OK)
