"""Opening a transport for a URL, and declaring the task topology on it, idempotently."""

from __future__ import annotations

from collections.abc import Iterable

from ..settings import Settings
from .base import Transport


def connect(settings: Settings) -> Transport:
    """Open a transport for ``settings.broker_url``, failing within ``settings.connect_timeout``.

    ``memory://`` gives the in-process transport; anything else goes to RabbitMQ.

    Raises:
        BrokerError: The broker cannot be reached; the message carries no password.
    """
    if settings.broker_url.startswith("memory://"):
        from .memory import connect_in_process

        return connect_in_process(settings.broker_url)
    from .amqp import AmqpTransport

    return AmqpTransport(settings)


def declare_task_queues(transport: Transport, settings: Settings, names: Iterable[str]) -> None:
    """Declare the task exchange and the named queues, each bound by its own name."""
    transport.declare_exchange(settings.exchange, "direct", durable=True)
    for name in names:
        transport.declare_queue(name, durable=True)
        transport.bind_queue(name, settings.exchange, name)
