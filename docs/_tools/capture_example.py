"""Capture a real request and reply with raw kombu, for the worked example in protocol.rst.

Usage (any RabbitMQ vhost nobody else serves ``taskrpc.default`` on)::

    python docs/_tools/capture_example.py amqp://guest:guest@127.0.0.1:5672/taskrpc-docs

It sends ``fib(10)`` and ``fib(n=-1)`` through a real taskrpc client, takes both requests
off the queue with a raw consumer and prints them, then republishes them byte for byte
(same properties, same reply queue name, re-declared after the client has gone) for a
taskrpc worker and prints the replies as received.
"""

from __future__ import annotations

import sys
import time

from kombu import Connection, Consumer, Queue

from taskrpc import Worker
from taskrpc.fibonacci import app, fib


def show(kind: str, message: object) -> None:
    info = message.delivery_info  # type: ignore[attr-defined]
    print(f"--- {kind}: exchange={info['exchange']!r} routing_key={info['routing_key']!r}")
    for name, value in message.properties.items():  # type: ignore[attr-defined]
        print(f"    {name}: {value!r}")
    print(f"    body: {message.body!r}")  # type: ignore[attr-defined]


def main(url: str) -> None:
    app.configure(broker_url=url, default_timeout=30)
    handles = [fib.delay(10), fib.apply_async(kwargs={"n": -1})]
    reply_to = app.client._listener.reply_to
    del handles
    app.close()  # the client's exclusive reply queue goes; the same name is declared below
    time.sleep(0.3)
    with Connection(url) as connection:
        channel = connection.channel()
        requests = []
        for _ in range(2):
            message = channel.basic_get("taskrpc.default", no_ack=False)
            show("request", message)
            requests.append(message)
            channel.basic_ack(message.delivery_tag)
        queue = Queue(reply_to, exclusive=True, auto_delete=True, durable=False)(channel)
        queue.declare()
        for message in requests:
            properties = dict(message.properties)
            headers = properties.pop("application_headers")
            again = channel.prepare_message(
                message.body,
                content_type=properties.pop("content_type"),
                content_encoding=properties.pop("content_encoding"),
                headers=headers,
                properties=properties,
            )
            channel.basic_publish(again, "taskrpc", "taskrpc.default")
        worker = Worker(app, pool="solo")
        worker.start_in_thread()
        replies: list[object] = []
        Consumer(channel, [queue], no_ack=True, on_message=replies.append).consume()
        deadline = time.monotonic() + 10
        while len(replies) < 2 and time.monotonic() < deadline:
            try:
                connection.drain_events(timeout=1)
            except TimeoutError:
                pass
        for reply in replies:
            show("reply", reply)
        worker.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "amqp://guest:guest@127.0.0.1:5672//")
