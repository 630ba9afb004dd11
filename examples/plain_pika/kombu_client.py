"""Call taskrpc's Fibonacci task with plain kombu: the wire protocol by hand, no taskrpc import.

The same request and reply as ``client.py`` (see its docstring for the format), written
with kombu's ``Producer`` and ``Consumer`` instead of pika. Start a worker
(``taskrpc worker taskrpc.fibonacci:app``), then::

    python kombu_client.py 30               # prints: fib(30) = 832040

Exit status: 0 result printed, 1 the task answered with an error, 3 no reply in time,
4 broker trouble (unreachable, or no queue of that name: is a worker running?).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

from kombu import Connection, Consumer, Producer, Queue
from kombu.message import Message

#: The exchange every taskrpc request is published to.
EXCHANGE = "taskrpc"
#: Version of the wire format this client speaks.
PROTOCOL_VERSION = 1

EXIT_OK, EXIT_TASK_FAILED, EXIT_TIMEOUT, EXIT_BROKER = 0, 1, 3, 4


class NoReply(Exception):
    """The deadline passed before the reply arrived."""


class Unroutable(Exception):
    """The broker returned the request: no queue is bound under its routing key."""


def call(
    connection: Connection,
    queue: str,
    task: str,
    args: list[Any],
    kwargs: dict[str, Any],
    timeout: float,
) -> dict[str, Any]:
    """Send one request and return the decoded reply body.

    Raises:
        NoReply: No reply within ``timeout`` seconds.
        Unroutable: No queue is bound under ``queue``.
    """
    channel = connection.channel()
    # A private callback queue: named by the server, ours alone, gone when we disconnect.
    callback = Queue("", exclusive=True, auto_delete=True, durable=False)(channel)
    callback.declare()
    correlation_id = uuid.uuid4().hex
    replies: list[bytes] = []
    returned: list[str] = []

    def on_reply(message: Message) -> None:
        if message.properties.get("correlation_id") == correlation_id:  # else not ours
            replies.append(message.body)  # the raw bytes; we decode them ourselves

    def on_return(exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        returned.append(str(exc))

    Consumer(channel, [callback], no_ack=True, on_message=on_reply, auto_declare=False).consume()
    producer = Producer(channel, auto_declare=False, on_return=on_return)
    producer.publish(
        json.dumps({"args": args, "kwargs": kwargs}).encode(),  # bytes: kombu sends them as is
        exchange=EXCHANGE,
        routing_key=queue,
        content_type="application/json",  # with bytes, kombu adds content_encoding "binary"
        correlation_id=correlation_id,
        message_id=correlation_id,
        reply_to=callback.name,
        delivery_mode=1,  # transient: a request is worthless after its caller is gone
        expiration=timeout,  # seconds here; kombu sends milliseconds
        headers={"taskrpc-protocol": PROTOCOL_VERSION, "taskrpc-task": task},
        mandatory=True,  # the broker returns it (on_return) if no queue has that name
    )
    deadline = time.monotonic() + timeout
    while not replies:
        if returned:
            raise Unroutable(returned[0])
        left = deadline - time.monotonic()
        if left <= 0:
            raise NoReply(f"no reply from {task!r} on queue {queue!r} within {timeout:g} s")
        try:
            connection.drain_events(timeout=left)
        except TimeoutError:
            pass
    return json.loads(replies[0])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    allow_big_ints()
    with Connection(args.url, connect_timeout=5) as connection:
        try:
            connection.connect()
            reply = call(connection, args.queue, "fib", [args.n], {}, args.timeout)
        except NoReply as exc:
            print(f"error: timeout: {exc}", file=sys.stderr)
            return EXIT_TIMEOUT
        except Unroutable:
            print(f"error: broker: no queue {args.queue!r}: is a worker running?", file=sys.stderr)
            return EXIT_BROKER
        except (*connection.connection_errors, *connection.channel_errors) as exc:
            print(
                f"error: broker: {connection.as_uri()}: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
            return EXIT_BROKER
    return report(args.n, reply)


def report(n: int, reply: dict[str, Any]) -> int:
    """Print the result, or the error the worker sent; return the exit status."""
    if reply.get("ok"):
        print(f"fib({n}) = {reply['result']}")
        return EXIT_OK
    error = reply.get("error") or {}
    print(
        f"error: {error.get('code')}: {error.get('type')}: {error.get('message')}", file=sys.stderr
    )
    for detail in error.get("details") or []:  # validation errors: one per failing field
        field = ".".join(str(part) for part in detail.get("loc", []))
        print(f"  field {field}: {detail.get('msg')}", file=sys.stderr)
    return EXIT_TASK_FAILED


def allow_big_ints() -> None:
    """fib(100000) has 20,899 digits; CPython refuses ints of over 4,300 digits in JSON."""
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="which Fibonacci number to ask for")
    parser.add_argument(
        "--url",
        default=os.environ.get("TASKRPC_BROKER_URL", "amqp://guest:guest@localhost:5672//"),
        help="broker URL (default: $TASKRPC_BROKER_URL, else RabbitMQ on localhost)",
    )
    parser.add_argument(
        "--queue",
        default=os.environ.get("TASKRPC_DEFAULT_QUEUE", "taskrpc.default"),
        help="the worker's queue (default: $TASKRPC_DEFAULT_QUEUE, else taskrpc.default)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
