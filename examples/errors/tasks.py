"""Tasks that fail in the ways a caller must handle: a bank account and a slow task.

Serve them from this directory::

    taskrpc worker tasks:app

The app reads ``TASKRPC_BROKER_URL`` and ``TASKRPC_DEFAULT_QUEUE`` from the environment.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Annotated

from pydantic import Field

from taskrpc import App

# This example shows the caller the worker's traceback, which workers leave out of their
# replies unless told to (see the security guide).
app = App("errors", send_tracebacks=True)

#: The accounts the example bank holds, and their balances.
BALANCES = {"ada": Decimal("100.00"), "bob": Decimal("5.00")}


class InsufficientFunds(Exception):
    """The account holds less than the amount asked for."""


@app.task(name="bank.withdraw")
def withdraw(account: str, amount: Annotated[Decimal, Field(gt=0, decimal_places=2)]) -> Decimal:
    """Return the balance left after taking ``amount`` from ``account`` (nothing is stored).

    Raises:
        InsufficientFunds: The balance is smaller than ``amount``.
        KeyError: There is no such account.
    """
    balance = BALANCES[account]
    if amount > balance:
        raise InsufficientFunds(f"{account} holds {balance}, cannot withdraw {amount}")
    return balance - amount


@app.task(name="bank.slow_report")
def slow_report(seconds: Annotated[float, Field(ge=0, le=5)]) -> str:
    """Take ``seconds`` to answer, to show timeouts."""
    time.sleep(seconds)
    return f"report ready after {seconds:g} s"
