"""What a caller sees when a call fails: typed exceptions, one per kind of failure.

Start the worker from this directory (``taskrpc worker tasks:app``), then::

    python client.py [--url URL]

Every exception taskrpc raises derives from ``taskrpc.TaskRPCError``; the ones a worker
sends back derive from ``taskrpc.RemoteError`` and carry the remote type name, message,
traceback and (for validation) the failing fields. Catch the specific ones first.
"""

from __future__ import annotations

import argparse
import builtins
import sys
from decimal import Decimal

from tasks import app, slow_report, withdraw

import taskrpc

#: Longest a call may wait for its reply, in seconds.
CALL_TIMEOUT = 10.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app.configure(broker_url=args.url)  # None keeps TASKRPC_BROKER_URL or the default
    try:
        with app:
            success()
            remote_exception()
            invalid_arguments()
            unknown_task()
            timeouts()
    except taskrpc.BrokerError as exc:
        print(f"error: broker: {exc}", file=sys.stderr)
        return 4
    return 0


def success() -> None:
    balance = withdraw.delay("ada", Decimal("30")).get(timeout=CALL_TIMEOUT)
    print(f"ok: ada has {balance} left")


def remote_exception() -> None:
    """The task raised: a RemoteError naming the remote type, with its traceback as text."""
    try:
        withdraw.delay("bob", Decimal("50")).get(timeout=CALL_TIMEOUT)
    except taskrpc.RemoteError as exc:
        print(f"remote error: {describe(exc)}")
        print(f"  remote type {exc.type_name!r}, message {exc.message!r}")
        last_line = (exc.remote_traceback or "").strip().splitlines()[-1]
        print(f"  remote traceback ends with: {last_line}")


def invalid_arguments() -> None:
    """The worker validates arguments against the type hints; each error names its field."""
    bad_calls = [
        (["ada", "-5"], {}),  # amount must be positive
        (["ada"], {"amuont": 5}),  # a misspelt keyword: the call does not fit the signature
    ]
    for args, kwargs in bad_calls:
        try:
            withdraw.apply_async(args, kwargs).get(timeout=CALL_TIMEOUT)
        except taskrpc.InvalidArguments as exc:
            print(f"invalid arguments: {describe(exc)}")
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"])
                print(f"  field {field}: {error['msg']}")


def unknown_task() -> None:
    """Calling by name a task the worker does not have."""
    try:
        app.send_task("bank.close_account", ["ada"], timeout=CALL_TIMEOUT).get()
    except taskrpc.UnknownTask as exc:
        print(f"unknown task: {describe(exc)}")


def timeouts() -> None:
    """``get(timeout=...)`` gives up waiting, not the call; the call's own deadline is final."""
    result = slow_report.delay(0.5)
    try:
        result.get(timeout=0.1)
    except taskrpc.TimeoutError as exc:
        is_builtin = isinstance(exc, builtins.TimeoutError)
        print(f"timeout: {type(exc).__name__} (a builtin TimeoutError too: {is_builtin}): {exc}")
    print(f"  same call, asked again: {result.get(timeout=CALL_TIMEOUT)}")
    try:
        slow_report.apply_async([0.5], timeout=0.2).get()  # the call may take 0.2 s at most
    except taskrpc.TimeoutError as exc:
        print(f"timeout: {exc}")


def describe(exc: taskrpc.TaskRPCError) -> str:
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__} [{code}] {exc}" if code else f"{type(exc).__name__}: {exc}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", help="broker URL (default: $TASKRPC_BROKER_URL, else RabbitMQ on localhost)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
