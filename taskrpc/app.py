"""The App: settings, the task registry, and the client it calls through. No globals."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .codec import Codec
from .exceptions import ConfigurationError, NotRegistered
from .policies import RetryPolicy, TimeoutPolicy
from .policies.retry import (
    DEFAULT_CONNECT_RETRY,
    DEFAULT_PUBLISH_RETRY,
    DEFAULT_RESEND,
    NO_RETRY,
)
from .serializers import Registry, default_registry
from .settings import Settings
from .task import Task

if TYPE_CHECKING:
    from .client.aio import AsyncClient
    from .client.result import AsyncResult
    from .client.sync import Client

F = TypeVar("F", bound=Callable[..., Any])


class App:
    """A named set of tasks and the broker they are served on.

    Parameters:
        name: A label for logs and the default queue prefix.
        broker_url: AMQP URL; falls back to ``TASKRPC_BROKER_URL``, then to
            ``amqp://guest:guest@localhost:5672//``. ``memory://`` runs in one process.
        settings: A complete :class:`~taskrpc.Settings`; other keyword arguments override it.
        retry: Default :class:`~taskrpc.RetryPolicy` for task failures (none).
        timeouts: Default :class:`~taskrpc.TimeoutPolicy` of tasks (no run-time limits).
        connect_retry: Retries of broker connections.
        publish_retry: Retries of publishes that failed on a broken connection.
        resend: Client resends when safe (never reached a worker, or idempotent task).
        **options: Any :class:`~taskrpc.Settings` field, e.g. ``default_timeout=10``.

    Example:
        >>> app = App("maths", broker_url="memory://")
        >>> @app.task
        ... def add(x: int, y: int) -> int:
        ...     return x + y
        >>> add(1, 2)  # a plain local call
        3
    """

    def __init__(
        self,
        name: str = "taskrpc",
        *,
        broker_url: str | None = None,
        settings: Settings | None = None,
        retry: RetryPolicy = NO_RETRY,
        timeouts: TimeoutPolicy | None = None,
        connect_retry: RetryPolicy = DEFAULT_CONNECT_RETRY,
        publish_retry: RetryPolicy = DEFAULT_PUBLISH_RETRY,
        resend: RetryPolicy = DEFAULT_RESEND,
        **options: Any,
    ) -> None:
        self.name = name
        #: Default retry policy of tasks (task failures on the worker); none by default.
        self.retry = retry
        #: Default run-time limits of tasks.
        self.timeouts = timeouts or TimeoutPolicy()
        #: Retrying a broker connection that fails or drops.
        self.connect_retry = connect_retry
        #: Retrying a publish that failed on a broken connection.
        self.publish_retry = publish_retry
        #: Client resends of calls that provably never reached a worker (or are idempotent).
        self.resend = resend
        overrides = {"broker_url": broker_url, **options}
        if settings is None:
            settings = Settings.from_env(**overrides)
        else:
            settings = dataclasses.replace(
                settings, **{k: v for k, v in overrides.items() if v is not None}
            )
        self.settings = settings
        self.serializers: Registry = default_registry()
        self.codec = Codec(self.serializers, max_size=settings.max_message_size)
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._client: Client | None = None
        self._async_client: AsyncClient | None = None
        self._client_lock = threading.Lock()

    def configure(self, **options: Any) -> None:
        """Replace settings (``None`` values are ignored), e.g. from command-line options.

        Raises:
            ConfigurationError: The client is already connected, or an option is unknown.
        """
        if self._client is not None or self._async_client is not None:
            raise ConfigurationError("configure the app before its client connects")
        try:
            self.settings = dataclasses.replace(
                self.settings, **{k: v for k, v in options.items() if v is not None}
            )
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from None
        self.codec = Codec(self.serializers, max_size=self.settings.max_message_size)

    def __repr__(self) -> str:
        return f"<App {self.name!r} broker={self.settings.safe_broker_url!r}>"

    @overload
    def task(self, fn: F, /) -> Task[Any, Any]: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        timeouts: TimeoutPolicy | None = None,
        idempotent: bool = False,
    ) -> Callable[[F], Task[Any, Any]]: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        timeouts: TimeoutPolicy | None = None,
        idempotent: bool = False,
    ) -> Any:
        """Register a function as a task; use bare (``@app.task``) or with options.

        Parameters:
            fn: The function; its type hints are the task's contract.
            name: Registered name; defaults to ``module.qualname``.
            queue: Queue the task's requests go to; defaults to the app's default queue
                (as configured when the call is made).
            retry: Retry policy for the task's failures, e.g.
                ``RetryPolicy(retry_on=(ConnectionError,), max_retries=3)``.
            timeouts: Call deadline and soft/hard run-time limits.
            idempotent: Safe to run twice; lets the client resend it on its own.

        Raises:
            ConfigurationError: Another task already has that name.
        """

        def register(func: Callable[..., Any]) -> Task[Any, Any]:
            task_name = name or f"{func.__module__}.{func.__qualname__}"
            if task_name in self.tasks:
                raise ConfigurationError(f"a task named {task_name!r} is already registered")
            task: Task[Any, Any] = Task(
                self,
                func,
                name=task_name,
                queue=queue,
                retry=retry,
                timeouts=timeouts,
                idempotent=idempotent,
            )
            self.tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    def get_task(self, name: str) -> Task[Any, Any]:
        """Return the task registered as ``name``, or, failing that, the one whose
        function is called ``name`` if exactly one is.

        Raises:
            NotRegistered: No task (or more than one) matches.
        """
        if name in self.tasks:
            return self.tasks[name]
        matches = [t for t in self.tasks.values() if t.fn.__name__ == name]
        if len(matches) == 1:
            return matches[0]
        raise NotRegistered(f"no task named {name!r} in {self!r}")

    @property
    def queues(self) -> list[str]:
        """The queues this app's tasks are routed to, sorted."""
        return sorted({t.queue for t in self.tasks.values()} or {self.settings.default_queue})

    @property
    def client(self) -> Client:
        """The app's shared, thread-safe client, connected on first use."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    from .client.sync import Client

                    self._client = Client(self)
        return self._client

    @property
    def async_client(self) -> AsyncClient:
        """The app's shared asyncio client, connected on first use."""
        if self._async_client is None:
            with self._client_lock:
                if self._async_client is None:
                    from .client.aio import AsyncClient

                    self._async_client = AsyncClient(self)
        return self._async_client

    def send_task(
        self,
        name: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        queue: str | None = None,
    ) -> AsyncResult[Any]:
        """Call a task by name, without importing its code; the result is plain JSON data."""
        return self.client.send(
            name, args, kwargs, timeout=timeout, queue=queue or self.settings.default_queue
        )

    def close(self) -> None:
        """Close the app's client; pending calls fail with :class:`~taskrpc.ClientClosed`."""
        with self._client_lock:
            clients = (self._client, self._async_client)
            self._client = self._async_client = None
        for client in clients:
            if client is not None:
                client.close()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
