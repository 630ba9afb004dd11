"""Call tasks from asyncio: await one call, gather many, handle errors and timeouts.

Start the worker from this directory (``taskrpc worker tasks:app --concurrency 8``), then::

    python client.py [--url URL]

The broker is ``--url``, else ``TASKRPC_BROKER_URL``, else RabbitMQ on localhost.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from tasks import PRICES, app, lookup, total

import taskrpc

#: How many lookups are sent at once with asyncio.gather.
GATHERED = 30
#: Interval of the heartbeat that shows the event loop is never blocked, in seconds.
TICK = 0.05


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app.configure(broker_url=args.url)  # None keeps TASKRPC_BROKER_URL or the default
    try:
        # app.async_client is the app's shared AsyncClient; leaving the block closes it.
        async with app.async_client:
            await one_call()
            await many_calls()
            await handles_and_names()
            await failures()
    except taskrpc.BrokerError as exc:
        print(f"error: broker: {exc}", file=sys.stderr)
        return 4
    return 0


async def one_call() -> None:
    """``call_async`` is the asyncio ``delay(...).get()``; the result has the task's type."""
    price = await lookup.call_async("apple")
    print(f"one call: apple costs {price} ({type(price).__name__})")


async def many_calls() -> None:
    """Many calls in flight at once; the event loop stays free while they run."""
    skus = [sku for _ in range(GATHERED // len(PRICES)) for sku in PRICES]
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(TICK)
            ticks += 1

    beating = asyncio.create_task(heartbeat())
    started = time.perf_counter()
    prices = await asyncio.gather(*(lookup.call_async(sku) for sku in skus))
    seconds = time.perf_counter() - started
    beating.cancel()
    print(
        f"gathered {len(prices)} lookups in {seconds:.1f} s "
        f"(one after another: at least {0.2 * len(skus):.1f} s)"
    )
    print(f"  the event loop ran a {TICK * 1000:.0f} ms heartbeat {ticks} times meanwhile")
    print(f"  sum: {await total.call_async(prices)}")


async def handles_and_names() -> None:
    """``send_async`` takes the options of ``apply_async`` and returns an awaitable handle;
    ``async_client.call`` calls by name and returns plain JSON data."""
    call = await total.send_async((["0.40", "0.55"],), {"quantity": 3}, timeout=5)
    print(f"handle: {call.task} -> {await call}")
    result = await app.async_client.call("prices.total", ["0.25"], quantity=4)
    print(f"by name: {result!r} (plain JSON data: the caller does not know the type)")


async def failures() -> None:
    """Remote errors and timeouts raise from the ``await``, as they do from ``get()``."""
    try:
        await lookup.call_async("kiwi")
    except taskrpc.RemoteError as exc:
        print(f"remote error: {exc}")
    try:
        await lookup.call_async(42)
    except taskrpc.InvalidArguments as exc:
        print(f"invalid arguments: {exc.errors()[0]['msg']}")
    call = await lookup.send_async(("pear",), timeout=0.05)  # the task takes 0.2 s
    try:
        await call
    except taskrpc.TimeoutError as exc:
        print(f"timeout: {exc}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", help="broker URL (default: $TASKRPC_BROKER_URL, else RabbitMQ on localhost)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
