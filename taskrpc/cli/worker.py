"""``taskrpc worker APP``: serve an app's tasks."""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType
from typing import Any

import click

from . import EXIT_BROKER, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .loading import broker_option, load_app, setup_logging

logger = logging.getLogger("taskrpc.worker")


@click.command()
@click.argument("app_path", metavar="APP")
@broker_option
@click.option("-Q", "--queues", help="Comma-separated queues to consume (default: the app's).")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), help="Jobs run at once.")
@click.option(
    "-P",
    "--pool",
    type=click.Choice(["threads", "processes", "solo"]),
    default="threads",
    show_default=True,
    help="Where tasks run; 'processes' for CPU-bound tasks.",
)
@click.option("--prefetch", type=click.IntRange(min=1), help="Unacked requests held at once.")
@click.option(
    "-l",
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="'json': one JSON object a line, with request id, task, queue, duration, outcome.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    help="Serve Prometheus metrics on this port at /metrics (needs taskrpc[metrics]).",
)
@click.option(
    "--metrics-address",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics server listens on (0.0.0.0 for every interface).",
)
@click.option(
    "--control/--no-control",
    default=True,
    show_default=True,
    help="Answer 'taskrpc inspect' and revocations on the control exchange.",
)
def worker(
    app_path: str,
    broker: str | None,
    queues: str | None,
    concurrency: int | None,
    pool: str,
    prefetch: int | None,
    loglevel: str,
    log_format: str,
    metrics_port: int | None,
    metrics_address: str,
    control: bool,
) -> None:
    """Serve the tasks of APP (module:attribute, e.g. taskrpc.fibonacci:app).

    SIGTERM or a first Ctrl-C stops taking requests, finishes the ones in hand and
    exits 0; a second Ctrl-C exits at once, leaving unacked requests to the broker.
    """
    from ..exceptions import AuthenticationFailed, BrokerError, ConfigurationError
    from ..logs import RequestLog
    from ..worker import Worker

    setup_logging(loglevel, log_format)
    app = load_app(app_path)
    try:
        app.configure(broker_url=broker)
        hooks: list[Any] = [RequestLog()]
        if metrics_port is not None:
            hooks.append(_serve_metrics(metrics_port, metrics_address))
        server = Worker(
            app,
            queues=queues.split(",") if queues else None,
            pool=pool,
            concurrency=concurrency,
            prefetch=prefetch,
            middleware=hooks,
            control=control,
        )
    except ConfigurationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    _install_signal_handlers(server)
    try:
        server.run()
    except AuthenticationFailed as exc:  # systemd must not restart it for ever
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except BrokerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BROKER)
    except ConfigurationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_OK)


def _serve_metrics(port: int, address: str) -> Any:
    """The worker's metrics middleware, served on ``address:port`` from now on."""
    from ..metrics import WorkerMetrics, serve_metrics

    metrics = WorkerMetrics()
    try:
        serve_metrics(port, address)
    except OSError as exc:
        raise click.UsageError(f"cannot serve metrics on {address}:{port}: {exc}") from None
    logger.info("metrics on http://%s:%d/metrics", address, port)
    return metrics


def _install_signal_handlers(server: object) -> None:
    interrupts = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            logger.warning(
                "%s: finishing requests in hand (Ctrl-C again to exit at once)",
                signal.Signals(signum).name,
            )
            server.stop()  # type: ignore[attr-defined]
            return
        logger.warning("exiting at once; unacked requests go back to the queue")
        server.kill_pool()  # type: ignore[attr-defined]
        os._exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
