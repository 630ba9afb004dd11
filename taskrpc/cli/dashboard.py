"""``taskrpc dashboard``: serve the live dashboard."""

from __future__ import annotations

import sys

import click

from . import EXIT_OK, EXIT_USAGE
from .loading import broker_option, setup_logging


@click.command()
@click.option("--app", "app_path", metavar="APP", help="Show only this app's workers (module:app).")
@broker_option
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--interval",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.5),
    help="Seconds between polls of the workers.",
)
def dashboard(
    app_path: str | None, broker: str | None, port: int, address: str, interval: float
) -> None:
    """Serve a live web page of every worker, queue, task and recent failure.

    It asks the workers over the control plane (like 'taskrpc inspect') every INTERVAL
    seconds and pushes the result to open pages. Needs taskrpc[dashboard].
    """
    from ..dashboard import serve
    from ..exceptions import ConfigurationError
    from .inspect import _app_for

    setup_logging("warning")
    app = _app_for(app_path, broker)
    click.echo(f"taskrpc dashboard on http://{address}:{port}/", err=True)
    try:
        serve(app, host=address, port=port, interval=interval, only_app=app_path is not None)
    except ConfigurationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_OK)
