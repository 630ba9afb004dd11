"""Tasks for the asyncio example: a coroutine task and a plain one.

Serve them from this directory::

    taskrpc worker tasks:app --concurrency 8

The app reads ``TASKRPC_BROKER_URL`` and ``TASKRPC_DEFAULT_QUEUE`` from the environment.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from taskrpc import App

app = App("prices")

#: The catalogue the example prices from, in euros.
PRICES = {"apple": Decimal("0.40"), "pear": Decimal("0.55"), "plum": Decimal("0.25")}


@app.task(name="prices.lookup")
async def lookup(sku: str) -> Decimal:
    """An ``async def`` task: the worker runs it to completion in an event loop of its own.

    The sleep stands for a call to another service (a database, an HTTP API).
    """
    await asyncio.sleep(0.2)
    return PRICES[sku]


@app.task(name="prices.total")
def total(prices: list[Decimal], quantity: int = 1) -> Decimal:
    """A plain function; asyncio callers await it the same way."""
    return sum(prices, Decimal(0)) * quantity
