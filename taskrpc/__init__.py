"""taskrpc: typed tasks and RPC over RabbitMQ, on kombu and pydantic.

Example:
    >>> import taskrpc
    >>> app = taskrpc.App("maths", broker_url="memory://")
    >>> @app.task
    ... def add(x: int, y: int) -> int:
    ...     return x + y
"""

from .app import App
from .client.result import AsyncResult
from .client.sync import Client
from .exceptions import (
    BadRequest,
    BrokerError,
    ClientClosed,
    ConfigurationError,
    ConnectionLost,
    InvalidArguments,
    InvalidResult,
    NotRegistered,
    RemoteError,
    TaskRPCError,
    TimeoutError,
    UnknownTask,
    WorkerLost,
)
from .messages import PROTOCOL_VERSION
from .serializers import ContentDisallowed, Registry, Serializer
from .settings import Settings
from .task import Task
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "PROTOCOL_VERSION",
    "App",
    "AsyncResult",
    "BadRequest",
    "BrokerError",
    "Client",
    "ClientClosed",
    "ConfigurationError",
    "ConnectionLost",
    "ContentDisallowed",
    "InvalidArguments",
    "InvalidResult",
    "NotRegistered",
    "Registry",
    "RemoteError",
    "Serializer",
    "Settings",
    "Task",
    "TaskRPCError",
    "TimeoutError",
    "UnknownTask",
    "Worker",
    "WorkerLost",
    "__version__",
]
