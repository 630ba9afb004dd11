"""The broker side: connections, topology, and the event pump that drives them."""

from .connection import connect, declare_task_queues, task_exchange, task_queue
from .pump import EventPump

__all__ = ["EventPump", "connect", "declare_task_queues", "task_exchange", "task_queue"]
