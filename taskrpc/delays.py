"""Delayed delivery in the broker: a cascade of TTL queues, one per power of two.

A request due in ``d`` milliseconds is published to the exchange of the level of its
highest 1 bit, with a routing key that spells ``d`` in binary over all the levels, most
significant bit first, followed by its task queue: ``"0.0.…0.1.0.1.orders"``.
Level ``k`` (``0 ≤ k < LEVELS``) is a topic exchange and a queue whose messages live
``2**k`` ms (``x-message-ttl``):

* a key whose bit ``k`` is 1 goes into level ``k``'s queue; when its time there is up
  the broker dead-letters it, routing key unchanged, to level ``k - 1``'s exchange;
* a key whose bit ``k`` is 0 skips the queue: level ``k``'s exchange passes it straight
  on to level ``k - 1``'s (an exchange-to-exchange binding).

Below level 0 is the delivery exchange, bound to every task queue by
``"*.*.….*.<queue>"``: the request lands in its queue when the bits are spent, after
exactly the sum of the TTLs of its 1 bits, that is ``d`` ms. Every message in a level's
queue has the same TTL, so none ever waits behind a longer one. The set of queues is
fixed (``LEVELS`` of them), any delay up to ``MAX_DELAY`` needs no plug-in, and a
delayed request is durable in the broker, not held by a worker. This is the design of
NServiceBus's delayed delivery for RabbitMQ, with milliseconds as the unit.

Delayed requests carry no AMQP ``expiration`` (it would cut their stay in a level
short); their deadline header counts from when they are due.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .transport import Transport

#: How many levels the cascade has; delays go up to ``2**LEVELS - 1`` ms (795 days).
LEVELS = 36

#: The longest delay, in seconds.
MAX_DELAY = (2**LEVELS - 1) / 1000

#: Prefix of the cascade's exchange and queue names; level ``k`` is ``f"{PREFIX}.{k}"``.
PREFIX = "taskrpc.delay"

#: The exchange the last level hands due requests to; bound to every task queue.
DELIVERY_EXCHANGE = f"{PREFIX}.deliver"


def level_name(level: int) -> str:
    """The exchange and queue name of ``level``."""
    return f"{PREFIX}.{level}"


def entry_exchange(milliseconds: int) -> str:
    """Where a request due in ``milliseconds`` (at least 1) is published: the level of
    its highest 1 bit. Publishing higher up would work too, but each level passed costs
    the broker an exchange-to-exchange hop; under a burst of publishes those hops made
    requests up to a second late in our measurements, and starting low keeps them at a
    few tens of milliseconds."""
    return level_name(milliseconds.bit_length() - 1)


def delay_milliseconds(seconds: float) -> int:
    """A delay in whole milliseconds, rounded up (a request is never early).

    Raises:
        ValueError: The delay is longer than :data:`MAX_DELAY`.
    """
    if seconds > MAX_DELAY:
        raise ValueError(f"a delay of {seconds:g} s is over the longest, {MAX_DELAY:g} s")
    return max(0, math.ceil(seconds * 1000))


def routing_key(milliseconds: int, queue: str) -> str:
    """The routing key that carries a request through the cascade to ``queue``."""
    bits = format(milliseconds, f"0{LEVELS}b")
    return ".".join(bits) + "." + queue


def destination(key: str) -> str:
    """The task queue named in a routing key (the key itself if it is not a delay's)."""
    words = key.split(".", LEVELS)
    if len(words) == LEVELS + 1 and all(w in ("0", "1") for w in words[:LEVELS]):
        return words[LEVELS]
    return key


def _skip(level: int) -> str:
    return "*." * (LEVELS - 1 - level)


def declare_cascade(transport: Transport) -> None:
    """Declare every level's exchange, queue and bindings.

    Idempotent; the client does it once per connection before its first delayed call.

    Raises:
        NotImplementedError: The transport has no message TTLs (the in-process one).
    """
    transport.declare_exchange(DELIVERY_EXCHANGE, "topic", durable=True)
    for level in range(LEVELS):
        name = level_name(level)
        below = level_name(level - 1) if level else DELIVERY_EXCHANGE
        transport.declare_exchange(name, "topic", durable=True)
        transport.declare_queue(
            name,
            durable=True,
            arguments={"x-message-ttl": 2**level, "x-dead-letter-exchange": below},
        )
        transport.bind_queue(name, name, _skip(level) + "1.#")
        transport.bind_exchange(below, name, _skip(level) + "0.#")


def delivery_binding(queue: str) -> tuple[str, str]:
    """``(exchange, routing key)`` that binds task queue ``queue`` to the delivery exchange."""
    return DELIVERY_EXCHANGE, "*." * LEVELS + queue


def bind_for_delivery(transport: Transport, queue: str) -> None:
    """Declare the delivery exchange and bind task queue ``queue`` to it."""
    transport.declare_exchange(DELIVERY_EXCHANGE, "topic", durable=True)
    transport.bind_queue(queue, *delivery_binding(queue))
