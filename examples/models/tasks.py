"""A task that takes a pydantic model and returns one: pricing an order.

Serve it from this directory::

    taskrpc worker tasks:app

The app reads ``TASKRPC_BROKER_URL`` and ``TASKRPC_DEFAULT_QUEUE`` from the environment,
like every app built without explicit settings.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from pydantic import BaseModel, Field

from taskrpc import App

app = App("shop")

#: Coupon codes the task knows, and the fraction they take off.
COUPONS = {"WELCOME10": Decimal("0.10"), "HALF": Decimal("0.50")}
CENT = Decimal("0.01")


class LineItem(BaseModel):
    """One product line of an order."""

    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(gt=0, decimal_places=2)


class Order(BaseModel):
    """What the caller sends."""

    customer: str
    items: list[LineItem] = Field(min_length=1)
    coupon: str | None = None


class Quote(BaseModel):
    """What the worker sends back."""

    customer: str
    lines: int
    subtotal: Decimal
    discount: Decimal
    total: Decimal
    quoted_at: datetime


@app.task(name="shop.quote")
def quote(order: Order) -> Quote:
    """Price ``order``, applying its coupon if the code is known.

    The worker validates the incoming JSON into an :class:`Order` before this runs, and
    the caller gets a :class:`Quote` back, not a dict.
    """
    subtotal = sum((item.unit_price * item.quantity for item in order.items), Decimal(0))
    rate = COUPONS.get(order.coupon or "", Decimal(0))
    discount = (subtotal * rate).quantize(CENT)
    return Quote(
        customer=order.customer,
        lines=len(order.items),
        subtotal=subtotal,
        discount=discount,
        total=subtotal - discount,
        quoted_at=datetime.now(timezone.utc),
    )
