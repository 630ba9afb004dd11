"""The ``taskrpc`` command: a click group, one module per subcommand."""

from __future__ import annotations

import click

from .. import __version__

#: Success.
EXIT_OK = 0
#: The task ran and failed, or answered with an error (``taskrpc call``).
EXIT_TASK_FAILED = 1
#: Bad command line or configuration, including credentials the broker refuses (click
#: uses 2 for usage errors too); a service manager should not restart on it.
EXIT_USAGE = 2
#: No reply before the deadline.
EXIT_TIMEOUT = 3
#: The broker could not be reached or the connection was lost.
EXIT_BROKER = 4
#: Stopped at once by a second interrupt (128 + SIGINT).
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="taskrpc")
def cli() -> None:
    """Typed tasks and RPC over RabbitMQ."""


def _register() -> None:
    from .beat import beat
    from .bench import bench
    from .bench_metrics import bench_metrics
    from .bench_suites import bench_memory, bench_scaling
    from .call import call
    from .dashboard import dashboard
    from .demo import demo
    from .inspect import inspect, revoke
    from .schema import schema
    from .worker import worker

    commands = (worker, call, demo, bench, bench_memory, bench_scaling, bench_metrics, schema)
    for command in (*commands, inspect, revoke, dashboard, beat):
        cli.add_command(command)


_register()


def main() -> None:
    """Entry point of the ``taskrpc`` console script."""
    cli(prog_name="taskrpc")
