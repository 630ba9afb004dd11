"""Opening connections and declaring the topology, idempotently, from either side."""

from __future__ import annotations

from collections.abc import Iterable

from kombu import Connection, Exchange, Queue
from kombu.transport.virtual import Channel as VirtualChannel

from ..exceptions import BrokerError
from ..settings import Settings
from . import tls

#: How often the in-process memory transport polls its queues (seconds).
MEMORY_POLLING_INTERVAL = 0.001


def connect(settings: Settings) -> Connection:
    """Open a connection to the broker, failing within ``settings.connect_timeout``.

    Raises:
        BrokerError: The broker cannot be reached; the message carries no password.
    """
    connection = Connection(
        settings.broker_url,
        connect_timeout=settings.connect_timeout,
        ssl=tls.ssl_options(settings),
        transport_options={
            "polling_interval": MEMORY_POLLING_INTERVAL,
        },
    )
    try:
        connection.ensure_connection(max_retries=0)  # one try; our RetryPolicy retries
    except Exception as exc:
        connection.release()
        reason = tls.explain(exc, settings) or f"{type(exc).__name__}: {exc}"
        raise BrokerError(f"cannot connect to {settings.safe_broker_url}: {reason}") from None
    return connection


def task_exchange(settings: Settings) -> Exchange:
    """The direct exchange requests are published to."""
    return Exchange(settings.exchange, type="direct", durable=True)


def task_queue(settings: Settings, name: str) -> Queue:
    """A task queue, bound to the exchange with its own name as routing key."""
    return Queue(name, task_exchange(settings), routing_key=name, durable=True)


def declare_task_queues(channel: object, settings: Settings, names: Iterable[str]) -> list[Queue]:
    """Declare the exchange and the named queues on ``channel``; safe to repeat."""
    queues = [task_queue(settings, name)(channel) for name in names]
    for queue in queues:
        queue.declare()
    return queues


def is_virtual(connection: Connection) -> bool:
    """Whether ``connection`` is an in-process kombu transport (``memory://``) with no socket."""
    return isinstance(connection.default_channel, VirtualChannel)
