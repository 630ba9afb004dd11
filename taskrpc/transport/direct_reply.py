"""RabbitMQ's direct reply-to, and the name the broker gives a channel for it.

A client consuming the pseudo-queue ``amq.rabbitmq.reply-to`` may publish requests with
``reply_to`` set to that literal name; the broker then rewrites it, in each request it
routes, into ``amq.rabbitmq.reply-to.<channel>.<key>``: a name that routes back to the
consuming channel and contains a random 128-bit key, so that nobody can guess it.

A signature covers ``reply_to`` as the worker receives it, and a client cannot sign a
name it does not know. So the client learns its channel's name once, right after it
starts consuming, and then publishes its requests with that full name: the broker
rewrites only the literal ``amq.rabbitmq.reply-to``, so the full name reaches the worker
exactly as it was signed. To learn it, the client publishes one empty message with
``reply_to = amq.rabbitmq.reply-to`` and ``mandatory`` set to a routing key no queue has;
the broker returns it (``basic.return``) with ``reply_to`` already rewritten.
"""

from __future__ import annotations

import os
import time

from .base import Returned, Transport

#: RabbitMQ's pseudo-queue for direct reply-to: replies go straight to the consuming channel.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"

#: Routing key prefix of the probe message: no queue has such a name, so it comes back.
PROBE_PREFIX = "taskrpc.direct-reply-probe."


def learn_reply_to(transport: Transport, timeout: float = 10.0) -> str:
    """The full direct reply-to name of ``transport``'s channel, which consumes
    ``amq.rabbitmq.reply-to`` and is not in publisher-confirm mode yet.

    Raises:
        TimeoutError: The broker did not return the probe within ``timeout`` seconds.
        RuntimeError: The returned probe carries no rewritten name (the channel does not
            consume ``amq.rabbitmq.reply-to``, or the broker is not RabbitMQ).
    """
    returned: list[Returned] = []
    routing_key = PROBE_PREFIX + os.urandom(16).hex()
    previous = transport.on_return

    def on_return(message: Returned) -> None:
        if message.routing_key == routing_key:
            returned.append(message)
        elif previous is not None:
            previous(message)

    transport.on_return = on_return
    try:
        properties = {"reply_to": DIRECT_REPLY_TO}
        transport.publish(b"", properties, "", routing_key, mandatory=True)
        deadline = time.monotonic() + timeout
        while not returned:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the broker did not return the direct reply-to probe")
            transport.wait(left)
    finally:
        transport.on_return = previous
    name = returned[0].properties.get("reply_to")
    if not isinstance(name, str) or not name.startswith(DIRECT_REPLY_TO + "."):
        raise RuntimeError(f"the broker gave no direct reply-to name (got {name!r})")
    return name
