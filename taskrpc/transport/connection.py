"""Opening a transport for a URL, and declaring the task topology on it, idempotently."""

from __future__ import annotations

from collections.abc import Iterable

from .. import delays
from ..exceptions import BrokerError
from ..queues import queue_arguments
from ..settings import Settings
from . import tls
from .base import Transport
from .nodes import BrokerNodes


def connect(settings: Settings, nodes: BrokerNodes | None = None) -> Transport:
    """Open a transport to the first broker node that answers, each within
    ``settings.connect_timeout``. ``memory://`` gives the in-process transport.

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


def _connect_one(settings: Settings, url: str) -> Transport:
    if url.startswith("memory://"):
        from .memory import connect_in_process

        return connect_in_process(url)
    from .amqp import AmqpTransport

    try:
        return AmqpTransport(settings, url)
    except BrokerError:
        raise
    except Exception as exc:
        reason = tls.explain(exc, settings, url)
        if reason is None:
            raise  # BrokerNodes names the node, password masked
        raise BrokerError(reason) from None


def declare_task_queues(transport: Transport, settings: Settings, names: Iterable[str]) -> None:
    """Declare the task exchange and the named queues, each bound by its own name (and to
    the delay cascade's delivery exchange, where delayed requests land)."""
    transport.declare_exchange(settings.exchange, "direct", durable=True)
    for name in names:
        transport.declare_queue(name, durable=True, arguments=queue_arguments(settings, name))
        transport.bind_queue(name, settings.exchange, name)
        delays.bind_for_delivery(transport, name)
