"""Call the reference Fibonacci task through a worker: one call at a time, then many at once.

Start a worker first (it serves ``taskrpc.fibonacci``'s app), then run this file::

    taskrpc worker taskrpc.fibonacci:app
    python client.py --threads 4 --calls 200

The broker is ``--url``, else ``TASKRPC_BROKER_URL``, else RabbitMQ on localhost; the
queue is the app's default queue (``TASKRPC_DEFAULT_QUEUE``, else ``taskrpc.default``).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import taskrpc
from taskrpc.fibonacci import app, fib

#: The n asked for one at a time: small, past 64 bits, and a 209-digit number.
SEQUENTIAL_NS = (0, 1, 2, 10, 30, 90, 1000)
#: Longest a call may wait for its reply, in seconds.
CALL_TIMEOUT = 10.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app.configure(broker_url=args.url)  # None keeps TASKRPC_BROKER_URL or the default
    try:
        with app:  # closes the app's client on the way out
            sequential()
            wrong = in_flight(args.threads, args.calls)
    except taskrpc.BrokerError as exc:
        print(f"error: broker: {exc}", file=sys.stderr)
        return 4
    except taskrpc.TimeoutError as exc:
        queue = app.settings.default_queue
        print(f"error: {exc} (is a worker consuming {queue!r}?)", file=sys.stderr)
        return 3
    return 1 if wrong else 0


def sequential() -> None:
    """One call at a time: send, wait for the reply, print it."""
    for n in SEQUENTIAL_NS:
        started = time.perf_counter()
        value = fib.delay(n).get(timeout=CALL_TIMEOUT)  # an int, validated against `-> int`
        ms = (time.perf_counter() - started) * 1000
        print(f"fib({n}) = {shorten(value)}  [{ms:.1f} ms]")


def in_flight(threads: int, calls: int) -> int:
    """Send ``calls`` requests from ``threads`` threads before waiting for any reply.

    ``app.client`` is shared and thread-safe: every thread publishes on it, and one
    listener thread matches the replies to the calls by correlation id.

    Returns:
        How many results were wrong (0, unless something is badly broken).
    """
    ns = [i % 500 for i in range(calls)]
    per_thread = [ns[i::threads] for i in range(threads)]
    started = time.perf_counter()

    def send_then_get(chunk: list[int]) -> list[tuple[int, int]]:
        results = [(n, fib.delay(n)) for n in chunk]  # all published, none awaited yet
        return [(n, result.get(timeout=CALL_TIMEOUT)) for n, result in results]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        answers = [pair for chunk in pool.map(send_then_get, per_thread) for pair in chunk]
    seconds = time.perf_counter() - started
    wrong = sum(1 for n, value in answers if value != fib(n))  # fib(n) alone runs locally
    print(
        f"{len(answers)} calls from {threads} threads in {seconds * 1000:.0f} ms "
        f"({len(answers) / seconds:.0f} calls/s): "
        + ("all results correct" if not wrong else f"{wrong} WRONG results")
    )
    return wrong


def shorten(value: int) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} digits)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", help="broker URL (default: $TASKRPC_BROKER_URL, else RabbitMQ on localhost)"
    )
    parser.add_argument("--threads", type=int, default=4, help="threads sending at once")
    parser.add_argument("--calls", type=int, default=200, help="calls in flight in total")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
