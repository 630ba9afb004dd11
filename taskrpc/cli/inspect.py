"""``taskrpc inspect COMMAND`` and ``taskrpc revoke APP ID...``: the control plane."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from . import EXIT_BROKER, EXIT_OK, EXIT_TIMEOUT
from .loading import broker_option, load_app

#: Exit status when no worker answered within the timeout.
EXIT_NO_ANSWER = EXIT_TIMEOUT


def _app_for(app_path: str | None, broker: str | None) -> Any:
    from ..app import App

    app = load_app(app_path) if app_path else App()
    app.configure(broker_url=broker)
    return app


@click.command()
@click.argument("command", type=click.Choice(["ping", "stats", "active", "registered", "queues"]))
@click.option("--app", "app_path", metavar="APP", help="Ask only this app's workers (module:app).")
@broker_option
@click.option("--timeout", default=1.0, show_default=True, type=float, help="Seconds to wait.")
@click.option("--json", "as_json", is_flag=True, help="Print the answers as JSON.")
def inspect(
    command: str, app_path: str | None, broker: str | None, timeout: float, as_json: bool
) -> None:
    """Ask every live worker and print their answers (exit 3 if none answered).

    ping: who is alive. stats: uptime, pool, counts and rates. active: requests running
    now. registered: tasks, queues and argument schemas. queues: depth and consumers.
    """
    from ..control import broadcast
    from ..exceptions import BrokerError

    app = _app_for(app_path, broker)
    try:
        answers = broadcast(app, command, timeout=timeout, only_app=app_path is not None)
    except BrokerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BROKER)
    if as_json:
        click.echo(json.dumps(answers, indent=2, default=str))
    else:
        click.echo(format_answers(command, answers))
    sys.exit(EXIT_OK if answers else EXIT_NO_ANSWER)


@click.command()
@click.argument("app_path", metavar="APP")
@click.argument("ids", nargs=-1, required=True)
@broker_option
@click.option("--terminate", is_flag=True, help="Also stop running ones (processes pool).")
@click.option("--timeout", default=1.0, show_default=True, type=float, help="Seconds to wait.")
def revoke(
    app_path: str, ids: tuple[str, ...], broker: str | None, terminate: bool, timeout: float
) -> None:
    """Ask every live worker of APP not to start the requests IDS."""
    from ..exceptions import BrokerError

    app = _app_for(app_path, broker)
    try:
        answers = app.revoke(*ids, terminate=terminate, timeout=timeout)
    except BrokerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BROKER)
    for answer in answers:
        result = answer.get("result") or {}
        running = ", ".join(result.get("running") or []) or "-"
        click.echo(f"{answer['worker']}: revoked {len(ids)}; running there: {running}")
    if not answers:
        click.echo("no worker answered", err=True)
    sys.exit(EXIT_OK if answers else EXIT_NO_ANSWER)


def format_answers(command: str, answers: list[dict[str, Any]]) -> str:
    """The answers as a plain table, one row per worker (or per item)."""
    if not answers:
        return "no worker answered"
    header, rows = _ROWS[command](answers)
    return table(header, rows)


def table(header: list[str], rows: list[list[Any]]) -> str:
    """Left-aligned columns."""
    cells = [header] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def _ping(answers: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    rows = [[a["worker"], a["result"].get("app"), a["result"].get("pool")] for a in answers]
    return ["WORKER", "APP", "POOL"], rows


def _stats(answers: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for a in answers:
        r = a["result"]
        rows.append(
            [
                a["worker"],
                r.get("app"),
                f"{r.get('pool')}/{r.get('concurrency')}",
                r.get("busy"),
                _duration(r.get("uptime")),
                r.get("state"),
                r.get("total"),
                r.get("rate"),
            ]
        )
    return ["WORKER", "APP", "POOL", "BUSY", "UPTIME", "STATE", "TOTAL", "RATE/S"], rows


def _active(answers: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    rows = [
        [a["worker"], item["task"], item["id"], f"{item['runtime']:.1f}s"]
        for a in answers
        for item in a["result"]
    ]
    return ["WORKER", "TASK", "ID", "RUNNING FOR"], rows


def _registered(answers: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    rows = [[a["worker"], item["task"], item["queue"]] for a in answers for item in a["result"]]
    return ["WORKER", "TASK", "QUEUE"], rows


def _queues(answers: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    seen: dict[str, list[Any]] = {}
    for a in answers:
        for item in a["result"]:
            seen[item["queue"]] = [item["queue"], item.get("messages"), item.get("consumers")]
    return ["QUEUE", "MESSAGES", "CONSUMERS"], [seen[k] for k in sorted(seen)]


_ROWS = {
    "ping": _ping,
    "stats": _stats,
    "active": _active,
    "registered": _registered,
    "queues": _queues,
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return (
        time.strftime("%H:%M:%S", time.gmtime(seconds))
        if seconds < 86400
        else (f"{seconds / 86400:.1f}d")
    )
