"""Broker helpers for tests: wait for consumers, count messages, inject raw messages."""

from __future__ import annotations

import time
from typing import Any

from kombu import Connection


def queue_state(url: str, queue: str) -> tuple[int, int] | None:
    """``(messages ready, consumers)`` of ``queue``, or ``None`` if it does not exist."""
    with Connection(url, connect_timeout=2) as connection:
        try:
            _, messages, consumers = connection.default_channel.queue_declare(queue, passive=True)
        except connection.channel_errors:
            return None
    return messages, consumers


def wait_for_consumers(url: str, queue: str, count: int = 1, timeout: float = 15.0) -> None:
    """Block until ``queue`` has at least ``count`` consumers.

    Raises:
        TimeoutError: It did not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = queue_state(url, queue)
        if state is not None and state[1] >= count:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{queue!r} did not reach {count} consumer(s) in {timeout} s")


def publish_raw(
    url: str,
    routing_key: str,
    body: bytes,
    *,
    exchange: str = "",
    properties: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    content_type: str = "application/json",
) -> None:
    """Publish one message exactly as given, bypassing taskrpc (for fault injection)."""
    with Connection(url, connect_timeout=2) as connection:
        channel = connection.default_channel
        message = channel.prepare_message(
            body,
            content_type=content_type,
            content_encoding="binary",
            headers=headers or {},
            properties=properties or {},
        )
        channel.basic_publish(message, exchange, routing_key)
