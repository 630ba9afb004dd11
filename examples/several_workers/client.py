"""Spread calls over several workers, stop one of them mid-stream, and lose nothing.

Start two or three workers on one queue from this directory, then run this on the same
machine (``--stop-one`` signals a worker's process, so it must be local)::

    taskrpc worker tasks:app --concurrency 2 &
    taskrpc worker tasks:app --concurrency 2 &
    taskrpc worker tasks:app --concurrency 2 &
    python client.py --calls 300 --stop-one

The broker is ``--url``, else ``TASKRPC_BROKER_URL``, else RabbitMQ on localhost.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import sys

from tasks import Served, app, work

import taskrpc

#: Longest a call may wait for its reply, in seconds.
CALL_TIMEOUT = 60.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app.configure(broker_url=args.url)  # None keeps TASKRPC_BROKER_URL or the default
    try:
        with app:
            served, stopped = run(args.calls, stop_one=args.stop_one)
    except taskrpc.BrokerError as exc:
        print(f"error: broker: {exc}", file=sys.stderr)
        return 4
    except taskrpc.TimeoutError as exc:
        print(f"error: {exc} (are the workers running?)", file=sys.stderr)
        return 3
    return report(args.calls, served, stopped)


def run(calls: int, *, stop_one: bool) -> tuple[list[Served], int | None]:
    """Send every call at once, then collect the results in order.

    With ``stop_one``, once a third of the results are in, the worker that sent the last
    one gets SIGTERM: it stops taking requests, hands the ones it had prefetched back to
    the queue (for the other workers), finishes those it had started, and exits.
    """
    handles = [work.apply_async([job], timeout=CALL_TIMEOUT) for job in range(calls)]
    served: list[Served] = []
    stopped: int | None = None
    for handle in handles:
        served.append(handle.get())
        if stop_one and stopped is None and len(served) == calls // 3:
            stopped = served[-1].pid
            os.kill(stopped, signal.SIGTERM)
            print(f"sent SIGTERM to worker {stopped} after {len(served)} results")
    return served, stopped


def report(calls: int, served: list[Served], stopped: int | None) -> int:
    per_worker = collections.Counter(result.pid for result in served)
    for pid, count in sorted(per_worker.items()):
        print(f"worker {pid}: {count} calls" + ("  (stopped)" if pid == stopped else ""))
    redelivered = sum(result.redelivered for result in served)
    print(f"{redelivered} requests were handed back to the queue and served again")
    jobs = sorted(result.job for result in served)
    if jobs != list(range(calls)):
        print(f"{calls} calls but {len(set(jobs))} distinct results: LOST SOME", file=sys.stderr)
        return 1
    print(f"{calls} calls, {len(served)} results from {len(per_worker)} workers: none lost")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", help="broker URL (default: $TASKRPC_BROKER_URL, else RabbitMQ on localhost)"
    )
    parser.add_argument("--calls", type=int, default=300, help="calls to send")
    parser.add_argument(
        "--stop-one",
        action="store_true",
        help="SIGTERM one worker after a third of the results (same machine only)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
