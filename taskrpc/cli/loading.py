"""Shared helpers of the subcommands: loading an app, logging, broker option."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from ..app import App
from ..exceptions import ConfigurationError

#: The ``--broker`` option every subcommand that connects accepts.
broker_option = click.option(
    "--broker",
    metavar="URL",
    envvar="TASKRPC_BROKER_URL",
    show_envvar=True,
    help="Broker URL (default: the app's setting, else amqp://guest:guest@localhost:5672//).",
)


def load_app(path: str) -> App:
    """Import ``module:attribute`` (or ``module``, taking its ``app``) and return the App.

    Raises:
        click.BadParameter: The module or attribute is missing, or is not an App.
    """
    module_name, _, attribute = path.partition(":")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like ``python -m``: the current directory's modules
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}", param_hint="APP") from exc
    except ConfigurationError as exc:  # e.g. a malformed TASKRPC_* variable
        raise click.UsageError(f"{module_name}: {exc}") from exc
    name = attribute or "app"
    if not hasattr(module, name):
        apps = sorted(k for k, v in vars(module).items() if isinstance(v, App))
        hint = f"; its apps: {', '.join(apps)}" if apps else ""
        raise click.BadParameter(
            f"module {module_name!r} has no attribute {name!r}{hint}", param_hint="APP"
        )
    app: Any = getattr(module, name)
    if not isinstance(app, App):
        raise click.BadParameter(
            f"{module_name}:{name} is a {type(app).__name__}, not a taskrpc.App", param_hint="APP"
        )
    return app


def setup_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr at ``level``, as text with timestamps or (``"json"``) one JSON object
    a line; idempotent."""
    text = "%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s"
    if log_format != "json":
        logging.basicConfig(level=level.upper(), format=text, stream=sys.stderr)
        return
    from ..logs import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
