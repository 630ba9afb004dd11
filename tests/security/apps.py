"""The app the security tests serve from real worker processes.

Queue and broker come from ``TASKRPC_DEFAULT_QUEUE`` and ``TASKRPC_BROKER_URL``; signing
keys, accept lists and compression from the other ``TASKRPC_*`` variables the test sets.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from taskrpc import App

app = App("security")

#: The bare task's queue: unique per test run (the worker subprocess inherits it), since
#: other runs of this suite may share the broker.
BARE_QUEUE = os.environ.setdefault(
    "TASKRPC_TEST_BARE_QUEUE", f"taskrpc.test.security.bare.{uuid.uuid4().hex[:8]}"
)


class Refused(Exception):
    """A domain error the client may choose to rebuild."""


@app.task(name="add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="touch")
def touch(marker: str) -> str:
    """Create ``marker``: proof that a request ran."""
    with Path(marker).open("a") as f:
        f.write("ran\n")
    return marker


@app.task(name="echo")
def echo(value: Any) -> Any:
    return value


@app.task(name="size")
def size(blob: str) -> int:
    return len(blob)


@app.task(name="raise")
def raise_(kind: str, message: str) -> None:
    errors: dict[str, type[Exception]] = {
        "ValueError": ValueError,
        "KeyError": KeyError,
        "Refused": Refused,
        "OSError": OSError,
    }
    raise errors[kind](message)


@app.task(name="echo.msgpack", serializer="msgpack")
def echo_msgpack(value: Any) -> Any:
    return value


@app.task(name="echo.json_reply", reply_serializer="json")
def echo_json_reply(value: Any) -> Any:
    return value


@app.task(name="shout", queue=BARE_QUEUE, serializer="json", bare=True)
def shout(text: str) -> str:
    """A bare JSON task: a plain client sends ``"hi"`` and gets ``"HI"``."""
    return text.upper()
