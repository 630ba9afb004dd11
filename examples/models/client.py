"""Send a pydantic model to a task and get a pydantic model back.

Start the worker from this directory (``taskrpc worker tasks:app``), then::

    python client.py [--url URL]

The broker is ``--url``, else ``TASKRPC_BROKER_URL``, else RabbitMQ on localhost.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal

from tasks import LineItem, Order, Quote, app, quote

import taskrpc

#: Longest a call may wait for its reply, in seconds.
CALL_TIMEOUT = 10.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app.configure(broker_url=args.url)  # None keeps TASKRPC_BROKER_URL or the default
    try:
        with app:
            typed_call()
            by_name()
            invalid_model()
    except taskrpc.BrokerError as exc:
        print(f"error: broker: {exc}", file=sys.stderr)
        return 4
    return 0


def typed_call() -> None:
    """Through the task object: the model goes out as JSON and comes back as a Quote."""
    order = Order(
        customer="ada",
        items=[
            LineItem(sku="tea", quantity=3, unit_price=Decimal("4.20")),
            LineItem(sku="cup", quantity=2, unit_price=Decimal("9.99")),
        ],
        coupon="WELCOME10",
    )
    result = quote.delay(order).get(timeout=CALL_TIMEOUT)
    assert isinstance(result, Quote)  # rebuilt from the task's return annotation
    print(f"quote for {result.customer}: {type(result).__name__} with {result.lines} lines")
    print(f"  subtotal {result.subtotal}  discount {result.discount}  total {result.total}")
    print(
        f"  total is a {type(result.total).__name__}, quoted_at a "
        f"{type(result.quoted_at).__name__} ({result.quoted_at:%Y-%m-%d} UTC)"
    )


def by_name() -> None:
    """By name, without the task's code: plain JSON data in and out."""
    data = app.send_task(
        "shop.quote",
        [{"customer": "bob", "items": [{"sku": "pen", "quantity": 10, "unit_price": "1.50"}]}],
        timeout=CALL_TIMEOUT,
    ).get()
    print(f"by name: {type(data).__name__} total={data['total']!r}")


def invalid_model() -> None:
    """A dict that does not fit the model is refused by the worker, naming the field."""
    bad = {"customer": "eve", "items": [{"sku": "tea", "quantity": 0, "unit_price": "4.20"}]}
    try:
        quote.apply_async([bad]).get(timeout=CALL_TIMEOUT)  # untyped args: any JSON data
    except taskrpc.InvalidArguments as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            print(f"refused: {field}: {error['msg']}")
    else:
        raise AssertionError("the worker accepted an order with quantity 0")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", help="broker URL (default: $TASKRPC_BROKER_URL, else RabbitMQ on localhost)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
