"""``taskrpc call APP TASK ARGS...``: call a task once and print its result as JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from . import EXIT_BROKER, EXIT_OK, EXIT_TASK_FAILED, EXIT_TIMEOUT
from .loading import broker_option, load_app


@click.command(context_settings={"ignore_unknown_options": True})  # `fib -1` is an argument
@click.argument("app_path", metavar="APP")
@click.argument("task")
@click.argument("args", nargs=-1)
@broker_option
@click.option(
    "-k",
    "--kwarg",
    "kwargs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A keyword argument; repeatable.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the reply.",
)
@click.option("--traceback/--no-traceback", default=False, help="Print the remote traceback.")
def call(
    app_path: str,
    task: str,
    args: tuple[str, ...],
    broker: str | None,
    kwargs: tuple[str, ...],
    timeout: float,
    traceback: bool,
) -> None:
    """Call TASK of APP with ARGS and print the result as JSON.

    Each argument is read as JSON when it parses (30, '{"x": 1}'), else as a
    string. TASK is the registered name or, if unique, the function's name.
    Exits 1 if the task failed, 3 on timeout, 4 if the broker is unreachable.
    """
    from ..exceptions import BrokerError, NotRegistered, RemoteError, TaskRPCError, TimeoutError

    app = load_app(app_path)
    app.configure(broker_url=broker)
    try:
        name = app.get_task(task).name
    except NotRegistered:
        name = task  # the worker may know it even if this copy of the app does not
    try:
        with app:
            result = app.send_task(
                name, [_parse(a) for a in args], dict(_keyword(k) for k in kwargs), timeout=timeout
            ).get()
    except RemoteError as exc:
        label = type(exc).__name__
        click.echo(
            f"error: {exc}" if label == exc.type_name else f"error: {label}: {exc}", err=True
        )
        if traceback and exc.remote_traceback:
            click.echo(exc.remote_traceback.rstrip(), err=True)
        sys.exit(EXIT_TASK_FAILED)
    except TimeoutError as exc:
        click.echo(f"error: timeout: {exc}", err=True)
        sys.exit(EXIT_TIMEOUT)
    except BrokerError as exc:
        click.echo(f"error: broker: {exc}", err=True)
        sys.exit(EXIT_BROKER)
    except TaskRPCError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_TASK_FAILED)
    click.echo(app.serializers.by_name("json").dumps(result).decode())
    sys.exit(EXIT_OK)


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _keyword(pair: str) -> tuple[str, Any]:
    name, sep, value = pair.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--kwarg")
    return name, _parse(value)
