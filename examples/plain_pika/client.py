"""Call taskrpc's Fibonacci task with plain pika: the wire protocol by hand, no taskrpc import.

Start a worker (``taskrpc worker taskrpc.fibonacci:app``), then::

    python client.py 30                      # prints: fib(30) = 832040
    python client.py --url amqp://guest:guest@localhost:5672// --timeout 5 90

A request is one AMQP message:

* published to the direct exchange ``taskrpc`` with the task's queue as routing key;
* headers ``taskrpc-protocol: 1`` and ``taskrpc-task: <task name>``;
* properties ``content_type: application/json``, ``correlation_id`` (a fresh id),
  ``reply_to`` (the caller's own queue) and, optionally, ``expiration`` (the timeout in
  milliseconds, so the broker drops a request nobody took before its caller gave up);
* body ``{"args": [...], "kwargs": {...}}``.

The worker answers on the default exchange, routing key ``reply_to``, with the same
``correlation_id`` and a body ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": {"code", "type", "message", "traceback", "details"}}``.

Exit status: 0 result printed, 1 the task answered with an error, 3 no reply in time,
4 broker trouble (unreachable, or no queue of that name: is a worker running?).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
import uuid
from typing import Any

import pika
import pika.exceptions

#: The exchange every taskrpc request is published to.
EXCHANGE = "taskrpc"
#: Version of the wire format this client speaks.
PROTOCOL_VERSION = 1

EXIT_OK, EXIT_TASK_FAILED, EXIT_TIMEOUT, EXIT_BROKER = 0, 1, 3, 4


class NoReply(Exception):
    """The deadline passed before the reply arrived."""


def call(
    channel: Any, queue: str, task: str, args: list[Any], kwargs: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Send one request and return the decoded reply body.

    Raises:
        NoReply: No reply within ``timeout`` seconds.
        pika.exceptions.UnroutableError: No queue is bound under ``queue``.
    """
    # A private callback queue: named by the server, ours alone, gone when we disconnect.
    reply_to = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
    correlation_id = uuid.uuid4().hex
    replies: list[bytes] = []

    def on_reply(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        if properties.correlation_id == correlation_id:  # anything else is not ours
            replies.append(body)

    channel.basic_consume(reply_to, on_reply, auto_ack=True)
    channel.basic_publish(
        EXCHANGE,
        routing_key=queue,
        body=json.dumps({"args": args, "kwargs": kwargs}).encode(),
        properties=pika.BasicProperties(
            content_type="application/json",
            correlation_id=correlation_id,
            message_id=correlation_id,
            reply_to=reply_to,
            delivery_mode=1,  # transient: a request is worthless after its caller is gone
            expiration=str(max(1, int(timeout * 1000))),  # milliseconds, as a string
            headers={"taskrpc-protocol": PROTOCOL_VERSION, "taskrpc-task": task},
        ),
        mandatory=True,  # with confirms on: UnroutableError if no queue has that name
    )
    deadline = time.monotonic() + timeout
    while not replies:
        left = deadline - time.monotonic()
        if left <= 0:
            raise NoReply(f"no reply from {task!r} on queue {queue!r} within {timeout:g} s")
        channel.connection.process_data_events(time_limit=left)
    return json.loads(replies[0])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    allow_big_ints()
    parameters = connection_parameters(args.url)
    parameters.socket_timeout = parameters.blocked_connection_timeout = 5
    parameters.connection_attempts = 1
    try:
        connection = pika.BlockingConnection(parameters)
    except pika.exceptions.AMQPError as exc:
        print(
            f"error: broker: cannot connect to {args.url.split('@')[-1]}: {exc!r}", file=sys.stderr
        )
        return EXIT_BROKER
    try:
        channel = connection.channel()
        channel.confirm_delivery()  # basic_publish waits for the broker's ack (or return)
        reply = call(channel, args.queue, "fib", [args.n], {}, args.timeout)
    except NoReply as exc:
        print(f"error: timeout: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except pika.exceptions.UnroutableError:
        print(f"error: broker: no queue {args.queue!r}: is a worker running?", file=sys.stderr)
        return EXIT_BROKER
    except pika.exceptions.AMQPError as exc:
        print(f"error: broker: {exc!r}", file=sys.stderr)
        return EXIT_BROKER
    finally:
        if connection.is_open:
            connection.close()
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


def connection_parameters(url: str) -> pika.URLParameters:
    """Read a broker URL as taskrpc (that is, kombu) does.

    kombu reads ``amqp://host//`` as the virtual host ``/``; pika, following the AMQP URI
    spec, reads it as the empty name and wants ``amqp://host/%2F`` instead.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.path == "//":
        url = parts._replace(path="/%2F").geturl()
    return pika.URLParameters(url)


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
