"""The App: settings, the task registry, and the client it calls through. No globals."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from .appsettings import initial_settings, replaced_settings
from .calling import CallOptions
from .client.shared import SharedClients
from .codec import Codec
from .exceptions import ConfigurationError, NotRegistered
from .middleware import Middleware
from .policies import RetryPolicy, TimeoutPolicy
from .policies.retry import (
    DEFAULT_CONNECT_RETRY,
    DEFAULT_PUBLISH_RETRY,
    DEFAULT_RESEND,
    NO_RETRY,
)
from .registry import TaskDecorator, accept_serializers_of, find_task, register_task
from .security import RemoteExceptionTypes
from .serializers import Registry, default_registry
from .settings import Settings
from .task import CoroutineTask, FunctionTask, Task

if TYPE_CHECKING:
    from .beat.entries import PeriodicEntry
    from .client.aio import AsyncClient
    from .client.result import AsyncResult
    from .client.sync import Client

P = ParamSpec("P")
R = TypeVar("R")
TaskT = TypeVar("TaskT", bound=Task[Any, Any])


class App:
    """A named set of tasks and the broker they are served on.

    Parameters:
        name: A label for logs and the default queue prefix.
        broker_url: AMQP URL, or several nodes of a cluster (a list, or URLs separated by
            ``;``: the first that answers is used); falls back to ``TASKRPC_BROKER_URL``, then to
            ``amqp://guest:guest@localhost:5672//``. ``memory://`` runs in one process.
        settings: A complete :class:`~taskrpc.Settings`; other keyword arguments override it.
        retry: Default :class:`~taskrpc.RetryPolicy` for task failures (none).
        timeouts: Default :class:`~taskrpc.TimeoutPolicy` of tasks (no run-time limits).
        connect_retry: Retries of broker connections.
        publish_retry: Publishing again (same request id) when a publish provably reached no
            queue: the connection failed before or during it, or the broker did not confirm.
        resend: How often the client sends an idempotent call again after losing its
            reply queue (``max_retries``).
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
        broker_url: str | Sequence[str] | None = None,
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
        #: Resends of idempotent calls whose reply queue was lost.
        self.resend = resend
        self.settings = settings = initial_settings(broker_url, settings, options)
        #: Serializers by name and content type; ``enable("pickle")`` opts in to pickle.
        self.serializers: Registry = default_registry()
        self.codec = Codec.from_settings(self.serializers, settings)
        #: Exception types rebuilt from remote errors (see :meth:`App.allow_remote_exceptions`).
        self.remote_exceptions = RemoteExceptionTypes()
        self.tasks: dict[str, Task[Any, Any]] = {}
        #: Entries of ``taskrpc beat``, by name (see :meth:`periodic`).
        self.periodic_tasks: dict[str, PeriodicEntry] = {}
        #: Worker hooks, in the order they were added.
        self.middleware: list[Middleware] = []
        self._clients = SharedClients(self)

    def configure(self, **options: Any) -> None:
        """Replace settings (``None`` values are ignored), e.g. from command-line options.

        Raises:
            ConfigurationError: The client is already connected, or an option is unknown.
        """
        if self._clients.made:
            raise ConfigurationError("configure the app before its client connects")
        self.settings = replaced_settings(self.settings, options)
        self.codec = Codec.from_settings(self.serializers, self.settings)
        for task in self.tasks.values():
            accept_serializers_of(self.codec, task)

    def __repr__(self) -> str:
        return f"<App {self.name!r} broker={self.settings.safe_broker_url!r}>"

    @overload
    def task(  # type: ignore[overload-overlap]
        self, fn: Callable[P, Coroutine[Any, Any, R]], /
    ) -> CoroutineTask[P, R]: ...

    @overload
    def task(self, fn: Callable[P, R], /) -> FunctionTask[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        timeouts: TimeoutPolicy | None = None,
        idempotent: bool = False,
        serializer: str | None = None,
        reply_serializer: str | None = None,
        bare: bool = False,
        throws: tuple[type[BaseException], ...] = (),
        rate_limit: str | None = None,
        ignore_result: bool = False,
        priority: int | None = None,
    ) -> TaskDecorator: ...

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
        serializer: str | None = None,
        reply_serializer: str | None = None,
        bare: bool = False,
        throws: tuple[type[BaseException], ...] = (),
        rate_limit: str | None = None,
        ignore_result: bool = False,
        priority: int | None = None,
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
            serializer: Serializer of its requests (a call may still choose another).
            reply_serializer: Serializer of its replies; ``None``: the request's.
            bare: Also answer plain AMQP clients on its queue: a message with no taskrpc
                headers is decoded with ``serializer`` (e.g. ``"text"``) as the task's
                argument, and the reply body is the bare result.
            throws: Exception types the task raises as part of its contract (e.g.
                ``(OutOfStock,)``): their failures are logged at WARNING, others at ERROR.
            rate_limit: Most runs of the task per second, minute or hour on each worker
                (``"100/s"``, ``"10/m"``, ``"5/h"``; a token bucket without bursts).
                Requests over the limit wait on the worker without holding up others.
            ignore_result: Fire-and-forget: every call asks for no reply, is confirmed by
                the broker, never expires and is persistent (``persistent_jobs``); its
                handle's ``get()`` raises. :meth:`Task.publish` does this for one call.
            priority: Default priority of its requests, 0 to ``Settings.max_priority``.

        Raises:
            ConfigurationError: Another task already has that name, or another bare task
                serves the same queue.

        Example:
            >>> @app.task(queue="rpc_queue", serializer="text", bare=True)  # doctest: +SKIP
            ... def shout(text: str) -> str:
            ...     return text.upper()
        """

        register = functools.partial(
            register_task,
            self,
            name=name,
            queue=queue,
            retry=retry,
            timeouts=timeouts,
            idempotent=idempotent,
            serializer=serializer,
            reply_serializer=reply_serializer,
            bare=bare,
            throws=throws,
            rate_limit=rate_limit,
            ignore_result=ignore_result,
            priority=priority,
        )
        return register(fn) if fn is not None else register

    def periodic(
        self,
        *,
        every: float | timedelta | None = None,
        cron: str | None = None,
        timezone: str = "UTC",
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> Callable[[TaskT], TaskT]:
        """Run a task periodically, from ``taskrpc beat APP``; put it above ``@app.task``.

        Parameters:
            every: Seconds (or a ``timedelta``) between runs, at the multiples of it since
                the epoch: ``every=3600`` runs on the hour.
            cron: A five-field cron expression instead, e.g. ``"30 7 * * 1-5"``.
            timezone: The IANA time zone the cron expression is read in (default UTC).
            args: Positional arguments of every run.
            kwargs: Keyword arguments of every run.
            name: The entry's name; default: the task's name.

        Raises:
            ConfigurationError: Neither or both of ``every`` and ``cron``, a bad cron
                expression or time zone, a name taken, or arguments the task refuses.

        Example:
            >>> @app.periodic(cron="0 7 * * *", timezone="Europe/Paris")  # doctest: +SKIP
            ... @app.task
            ... def morning_report() -> None: ...
        """
        from .beat.entries import periodic_decorator, schedule_of

        schedule = schedule_of(every, cron, timezone)
        return periodic_decorator(self.periodic_tasks, schedule, args, kwargs, name)

    def bare_task(self, queue: str) -> Task[Any, Any] | None:
        """The task serving plain (headerless) requests on ``queue``, if any."""
        for task in self.tasks.values():
            if task.bare and task.queue == queue:
                return task
        return None

    def allow_remote_exceptions(self, *classes: type[Exception]) -> None:
        """Let callers rebuild these exception types from remote errors.

        A task failing with an allowed type raises, on the caller, an exception that is
        both that type and a :class:`~taskrpc.RemoteError`; other types stay plain
        ``RemoteError``. Types are matched by qualified name (``ValueError``,
        ``myapp.errors.OutOfStock``), never imported from a message.

        Example:
            >>> app.allow_remote_exceptions(ValueError, KeyError)  # doctest: +SKIP
        """
        self.remote_exceptions.allow(*classes)

    def add_middleware(self, middleware: Middleware) -> None:
        """Add worker hooks; ``before_*`` hooks run in the order added, ``after_*`` reversed."""
        self.middleware.append(middleware)

    def revoke(
        self, *request_ids: str, terminate: bool = False, timeout: float = 1.0
    ) -> list[dict[str, Any]]:
        """Ask every live worker of this app not to start the requests ``request_ids``.

        Workers remember a revoked id for an hour, or until its request's deadline once
        they have seen it, and answer such a request with :class:`~taskrpc.Revoked`.
        ``terminate=True`` also stops one already running, where the pool can (the
        processes pool kills its child); elsewhere it runs to its end.

        Returns:
            The answers of the workers reached within ``timeout`` seconds; each names
            the ids ``running`` there and those ``interrupted``.

        Example:
            >>> result = add.delay(1, 2)  # doctest: +SKIP
            >>> app.revoke(result.id)  # doctest: +SKIP
        """
        from .control import broadcast

        arguments = {"ids": list(request_ids), "terminate": terminate}
        return broadcast(self, "revoke", arguments, timeout=timeout)

    def get_task(self, name: str) -> Task[Any, Any]:
        """Return the task registered as ``name``, or, failing that, the one whose
        function is called ``name`` if exactly one is.

        Raises:
            NotRegistered: No task (or more than one) matches.
        """
        task = find_task(self.tasks, name)
        if task is None:
            raise NotRegistered(f"no task named {name!r} in {self!r}")
        return task

    @property
    def queues(self) -> list[str]:
        """The queues this app's tasks are routed to, sorted."""
        return sorted({t.queue for t in self.tasks.values()} or {self.settings.default_queue})

    @property
    def client(self) -> Client:
        """The app's shared, thread-safe client, connected on first use."""
        return self._clients.sync()

    @property
    def async_client(self) -> AsyncClient:
        """The app's shared asyncio client, connected on first use."""
        return self._clients.asyncio()

    def send_task(
        self,
        name: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        queue: str | None = None,
        serializer: str | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
    ) -> AsyncResult[Any]:
        """Call a task by name, without importing its code; the result is plain JSON data.

        The options are those of :meth:`Task.apply_async <taskrpc.Task.apply_async>`. If
        this app knows the task, the arguments are checked here first.
        """
        known = self.tasks.get(name)
        if known is not None:
            known.check_call(args, kwargs)
        options = CallOptions(countdown=countdown, eta=eta)
        return self.client.send(
            name,
            args,
            kwargs,
            timeout=timeout,
            queue=queue or self.settings.default_queue,
            serializer=serializer,
            delay=options.delay(),
        )

    def close(self) -> None:
        """Close the app's client; pending calls fail with :class:`~taskrpc.ClientClosed`."""
        self._clients.close()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
