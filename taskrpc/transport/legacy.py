"""kombu connections for the parts not yet on the :class:`~taskrpc.transport.Transport`
interface (the beat scheduler and the control plane).

New code should use :func:`taskrpc.transport.connect`; this module goes once they move.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kombu import Connection, Exchange, Queue
from kombu.transport.virtual import Channel as VirtualChannel

from .. import delays
from ..queues import queue_arguments
from ..settings import Settings
from . import tls
from .nodes import BrokerNodes

#: How often kombu's in-process memory transport polls its queues (seconds).
MEMORY_POLLING_INTERVAL = 0.001


def connect_kombu(settings: Settings, nodes: BrokerNodes | None = None) -> Connection:
    """A kombu connection to the first node that answers (kombu's own ``memory://``).

    Raises:
        BrokerError: No node can be reached; the message carries no password.
    """
    if nodes is None:
        nodes = BrokerNodes(settings.broker_url, settings.broker_failover_strategy)
    tls.check(settings)
    return nodes.connect(lambda url: _connect_one(settings, url))


def _connect_one(settings: Settings, url: str) -> Connection:
    from ..exceptions import BrokerError

    connection = Connection(
        url,
        connect_timeout=settings.connect_timeout,
        heartbeat=settings.broker_heartbeat,
        ssl=tls.ssl_options(settings, url),
        transport_options={"polling_interval": MEMORY_POLLING_INTERVAL},
    )
    try:
        connection.ensure_connection(max_retries=0)
    except Exception as exc:
        connection.release()
        reason = tls.explain(exc, settings, url)
        if reason is None:
            raise
        raise BrokerError(reason) from None
    return connection


def declare_task_queues_on(channel: Any, settings: Settings, names: Iterable[str]) -> list[Queue]:
    """Declare the task exchange and the named queues on a kombu or py-amqp channel."""
    exchange = Exchange(settings.exchange, type="direct", durable=True)
    queues = [
        Queue(
            name,
            exchange,
            routing_key=name,
            durable=True,
            queue_arguments=queue_arguments(settings, name),
        )(channel)
        for name in names
    ]
    for queue in queues:
        queue.declare()
        exchange_name, key = delays.delivery_binding(queue.name)
        channel.exchange_declare(exchange_name, "topic", durable=True, auto_delete=False)
        channel.queue_bind(queue.name, exchange_name, key)
    return queues


def is_virtual(connection: Connection) -> bool:
    """Whether ``connection`` is kombu's in-process transport (``memory://``)."""
    return isinstance(connection.default_channel, VirtualChannel)
