"""``taskrpc beat APP``: send an app's periodic requests."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import click

from . import EXIT_BROKER, EXIT_OK, EXIT_USAGE
from .loading import broker_option, load_app, setup_logging

logger = logging.getLogger("taskrpc.beat")


@click.command()
@click.argument("app_path", metavar="APP")
@broker_option
@click.option(
    "-l",
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
def beat(app_path: str, broker: str | None, loglevel: str) -> None:
    """Send the periodic requests of APP (module:attribute) on their schedules.

    Run several for availability: one leads at a time (RabbitMQ's single active
    consumer) and another takes over when it stops or dies, without sending a tick
    twice or losing one. SIGTERM or Ctrl-C stops it (exit 0).
    """
    from ..beat.service import Beat
    from ..exceptions import AuthenticationFailed, BrokerError, ConfigurationError

    setup_logging(loglevel)
    app = load_app(app_path)
    try:
        app.configure(broker_url=broker)
        service = Beat(app)
    except ConfigurationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("beat: %s, stopping", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        service.run()
    except AuthenticationFailed as exc:  # retrying (or restarting) cannot fix it
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except BrokerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BROKER)
    except ConfigurationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_OK)
