"""Retries, time limits and deadlines, seen from the caller.

Start the worker from this directory with the processes pool and two children::

    taskrpc worker tasks:app --pool processes --concurrency 2

then::

    python client.py [--url URL]

The broker is ``--url``, else ``TASKRPC_BROKER_URL``, else RabbitMQ on localhost.
"""

from __future__ import annotations

import argparse
import sys
import time

from tasks import app, build_report, fetch_rate, parse_rate, slow, stuck

import taskrpc

#: Longest a call may wait for its reply, in seconds, unless it says otherwise.
CALL_TIMEOUT = 10.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app.configure(broker_url=args.url)  # None keeps TASKRPC_BROKER_URL or the default
    # A ConnectionError raised by a task is raised here as a ConnectionError too (and as
    # a RemoteError); other task failures stay plain RemoteErrors.
    app.allow_remote_exceptions(ConnectionError)
    try:
        with app:
            retries()
            time_limits()
            deadlines()
    except taskrpc.BrokerError as exc:
        print(f"error: broker: {exc}", file=sys.stderr)
        return 4
    return 0


def retries() -> None:
    """The worker retries ``ConnectionError`` (the task's ``retry_on``), nothing else."""
    started = time.perf_counter()
    answer = fetch_rate.delay("EUR", 2).get(timeout=CALL_TIMEOUT)
    print(f"retried: {answer}  [{time.perf_counter() - started:.1f} s]")

    try:  # fails on every try: 1 + 3 retries, then the last error comes back
        fetch_rate.delay("EUR", 5).get(timeout=CALL_TIMEOUT)
    except ConnectionError as exc:
        print(f"gave up: {exc}  (a RemoteError too: {isinstance(exc, taskrpc.RemoteError)})")

    try:  # a retry that could not finish before the call's deadline is not made
        fetch_rate.apply_async(["EUR", 5], timeout=0.5).get()
    except ConnectionError as exc:
        print(f"deadline first: {exc}")

    try:  # ValueError is not in retry_on: one try only
        parse_rate.delay("n/a").get(timeout=CALL_TIMEOUT)
    except taskrpc.RemoteError as exc:
        print(f"not retried: {exc}")


def time_limits() -> None:
    """Soft limit: an exception inside the task. Hard limit: the process is killed."""
    print(f"soft limit, caught: {build_report.delay(10).get(timeout=CALL_TIMEOUT)}")
    print(f"soft limit, not reached: {build_report.delay(2).get(timeout=CALL_TIMEOUT)}")
    try:
        stuck.delay().get(timeout=CALL_TIMEOUT)
    except taskrpc.TimeLimitExceeded as exc:
        print(f"hard limit: {type(exc).__name__}: {exc.message}")


def deadlines() -> None:
    """A call's timeout is a deadline for the whole call, queueing included."""
    busy = [slow.delay(1.5), slow.delay(1.5)]  # both pool processes taken for 1.5 s
    late = slow.apply_async([0], timeout=0.5)  # waits in the worker behind them
    try:
        late.get()
    except taskrpc.TimeoutError as exc:
        print(f"not started: TimeoutError at the deadline, started={exc.started}")
    wait_for_reply(late)  # the worker refuses it once a process is free
    try:
        late.get()
    except taskrpc.TimeoutError as exc:
        print(f"  asked again once the worker answered: started={exc.started} ({exc})")
    for call in busy:
        call.get(timeout=CALL_TIMEOUT)

    try:  # started in time, but takes longer than the caller waits
        slow.apply_async([1], timeout=0.3).get()
    except taskrpc.TimeoutError as exc:
        print(f"gave up waiting: started={exc.started}; the task goes on running on the worker")


def wait_for_reply(call: taskrpc.AsyncResult[str], seconds: float = CALL_TIMEOUT) -> None:
    """Poll ``ready()`` until the reply is in (``get`` never waits past the deadline)."""
    end = time.monotonic() + seconds
    while not call.ready() and time.monotonic() < end:
        time.sleep(0.05)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", help="broker URL (default: $TASKRPC_BROKER_URL, else RabbitMQ on localhost)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
