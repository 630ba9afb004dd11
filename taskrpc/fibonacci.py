"""The reference task: exact Fibonacci numbers, served by ``taskrpc worker taskrpc.fibonacci:app``.

The app reads its broker from ``TASKRPC_BROKER_URL`` (default: RabbitMQ on localhost).
It serves ``fib`` twice: to taskrpc clients on the default queue, and bare, in plain
text, on the queue ``rpc_queue``, so the RabbitMQ tutorial's RPC client (body ``str(n)``,
reply ``str(fib(n))``) gets its answers unchanged. The worker consumes both queues.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .app import App

#: Largest n served: fib(100000) has 20,899 digits, still a small message.
MAX_N = 100_000
#: The queue of the RabbitMQ RPC tutorial, served bare (plain text in, plain text out).
TUTORIAL_QUEUE = "rpc_queue"

app = App("fibonacci")


@app.task(name="fib")
def fib(n: Annotated[int, Field(ge=0, le=MAX_N)]) -> int:
    """Return the n-th Fibonacci number (fib(0) = 0, fib(1) = 1), exactly.

    Uses fast doubling: O(log n) big-integer multiplications.

    Example:
        >>> fib(90)
        2880067194370816120
    """
    return _fib_pair(n)[0]


#: ``fib`` for plain AMQP clients: a headerless ``str(n)`` on ``rpc_queue`` is answered with
#: ``str(fib(n))``, or ``error: <code>: <message>`` for bad input.
fib_text = app.task(name="fib.text", queue=TUTORIAL_QUEUE, serializer="text", bare=True)(fib.fn)


def _fib_pair(n: int) -> tuple[int, int]:
    """``(fib(n), fib(n + 1))`` by fast doubling, iteratively over the bits of n."""
    a, b = 0, 1
    for bit in bin(n)[2:]:
        c = a * (2 * b - a)  # fib(2k)
        d = a * a + b * b  # fib(2k + 1)
        a, b = (d, c + d) if bit == "1" else (c, d)
    return a, b
