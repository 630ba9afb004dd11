"""``taskrpc schema``: print the JSON Schema of an app's tasks, for clients in other languages."""

from __future__ import annotations

import json

import click

from .loading import load_app


@click.command()
@click.argument("app_path", metavar="APP")
@click.option("--task", "task_name", metavar="NAME", help="Only this task.")
@click.option("--indent", type=int, default=2, show_default=True, help="0: one line.")
def schema(app_path: str, task_name: str | None, indent: int) -> None:
    """Print, as JSON, each task of APP (module:app): its queue, the JSON Schema of its
    arguments and of its result, and its options. Nothing connects to the broker.

    \b
    Example:
        taskrpc schema taskrpc.fibonacci:app --task fib
    """
    from ..schema import app_schema

    app = load_app(app_path)
    if task_name is not None and task_name not in app.tasks:
        known = ", ".join(sorted(app.tasks)) or "none"
        raise click.BadParameter(f"no task {task_name!r} in {app_path} (tasks: {known})")
    document = app_schema(app, task_name)
    click.echo(json.dumps(document, indent=indent or None, sort_keys=False))
