"""taskrpc: typed tasks and RPC over RabbitMQ, on kombu and pydantic.

Example:
    >>> import taskrpc
    >>> app = taskrpc.App("maths", broker_url="memory://")
    >>> @app.task
    ... def add(x: int, y: int) -> int:
    ...     return x + y
"""

from .app import App
from .client.aio import AsyncCall, AsyncClient
from .client.result import AsyncResult
from .client.sync import Client
from .context import RequestContext, current_request
from .exceptions import (
    AuthenticationFailed,
    BadRequest,
    BrokerError,
    ClientClosed,
    ConfigurationError,
    ConnectionLost,
    ContentDisallowed,
    DeadlineExceeded,
    InvalidArguments,
    InvalidResult,
    LimitExceeded,
    NoQuorum,
    NotRegistered,
    PayloadTooLarge,
    PoisonRequest,
    RemoteError,
    Revoked,
    SoftTimeLimitExceeded,
    TaskRPCError,
    TimeLimitExceeded,
    TimeoutError,
    UnknownTask,
    Unroutable,
    WorkerLost,
)
from .fanout import as_completed, as_completed_async, gather, gather_async
from .messages import PROTOCOL_VERSION
from .middleware import Middleware
from .policies import RetryPolicy, TimeoutPolicy
from .serializers import Registry, Serializer
from .settings import Settings
from .task import Task
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "PROTOCOL_VERSION",
    "App",
    "AsyncCall",
    "AsyncClient",
    "AsyncResult",
    "AuthenticationFailed",
    "BadRequest",
    "BrokerError",
    "Client",
    "ClientClosed",
    "ConfigurationError",
    "ConnectionLost",
    "ContentDisallowed",
    "DeadlineExceeded",
    "InvalidArguments",
    "InvalidResult",
    "Middleware",
    "NoQuorum",
    "NotRegistered",
    "LimitExceeded",
    "PayloadTooLarge",
    "PoisonRequest",
    "Registry",
    "RemoteError",
    "RequestContext",
    "RetryPolicy",
    "Serializer",
    "Settings",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskRPCError",
    "TimeLimitExceeded",
    "TimeoutError",
    "TimeoutPolicy",
    "UnknownTask",
    "Unroutable",
    "Worker",
    "WorkerLost",
    "Revoked",
    "__version__",
    "as_completed",
    "as_completed_async",
    "current_request",
    "gather",
    "gather_async",
]
