"""Opening connections and declaring the topology, idempotently, from either side."""

from __future__ import annotations

from collections.abc import Iterable

from kombu import Connection, Exchange, Queue
from kombu.transport.virtual import Channel as VirtualChannel

from .. import delays
from ..exceptions import BrokerError
from ..queues import queue_arguments
from ..settings import Settings
from . import tls
from .nodes import BrokerNodes

#: How often the in-process memory transport polls its queues (seconds).
MEMORY_POLLING_INTERVAL = 0.001


def connect(settings: Settings, nodes: BrokerNodes | None = None) -> Connection:
    """Open a connection to the first broker node that answers, each within
    ``settings.connect_timeout``.

    Parameters:
        settings: The app's settings; ``broker_url`` may list several nodes.
        nodes: The caller's node rotation (see :mod:`taskrpc.transport.nodes`), so that
            a reconnection starts with the node after the one lost; default: a fresh one.

    Raises:
        BrokerError: No node can be reached; the message carries no password.
    """
    if nodes is None:
        nodes = BrokerNodes(settings.broker_url, settings.broker_failover_strategy)
    tls.check(settings)  # a TLS setting that cannot work: say so, not "cannot connect"
    return nodes.connect(lambda url: _connect_one(settings, url))


def _connect_one(settings: Settings, url: str) -> Connection:
    connection = Connection(
        url,
        connect_timeout=settings.connect_timeout,
        ssl=tls.ssl_options(settings, url),
        transport_options={
            "polling_interval": MEMORY_POLLING_INTERVAL,
        },
    )
    try:
        connection.ensure_connection(max_retries=0)  # one try; our RetryPolicy retries
    except Exception as exc:
        connection.release()
        reason = tls.explain(exc, settings, url)
        if reason is None:
            raise  # BrokerNodes names the node, password masked
        raise BrokerError(reason) from None
    return connection


def task_exchange(settings: Settings) -> Exchange:
    """The direct exchange requests are published to."""
    return Exchange(settings.exchange, type="direct", durable=True)


def task_queue(settings: Settings, name: str) -> Queue:
    """A task queue, bound to the exchange with its own name as routing key."""
    return Queue(
        name,
        task_exchange(settings),
        routing_key=name,
        durable=True,
        queue_arguments=queue_arguments(settings, name),
    )


def declare_task_queues(channel: object, settings: Settings, names: Iterable[str]) -> list[Queue]:
    """Declare the exchange and the named queues on ``channel``; safe to repeat."""
    queues = [task_queue(settings, name)(channel) for name in names]
    for queue in queues:
        queue.declare()
        delays.bind_for_delivery(channel, queue.name)  # delayed requests land here too
    return queues


def is_virtual(connection: Connection) -> bool:
    """Whether ``connection`` is an in-process kombu transport (``memory://``) with no socket."""
    return isinstance(connection.default_channel, VirtualChannel)
