"""The broker side: one transport interface, and its AMQP and in-process implementations.

See :mod:`taskrpc.transport.base` for the interface and how to drive it.
"""

from .base import BadDelivery, Delivery, Returned, Transport
from .connection import connect, declare_task_queues

__all__ = ["BadDelivery", "Delivery", "Returned", "Transport", "connect", "declare_task_queues"]
