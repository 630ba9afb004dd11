"""Task: a function registered with an app, callable locally or on a worker.

A task is generic over the function's parameters and its result,
``Task[P, R]``: a type checker sees ``add.delay(1, 2)`` as a call of
``add(x: int, y: int)`` and ``add.delay(1, 2).get()`` as an ``int``. Coroutine
functions become tasks whose result type is what the coroutine returns.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .calling import BoundCall, CallOptions
from .dispatch import client_options, publish_options
from .fanout.methods import FanOutMethods
from .policies import RetryPolicy, TimeoutPolicy
from .rates import parse_rate
from .signature import Signature

if TYPE_CHECKING:
    from .app import App
    from .client.aio import AsyncCall
    from .client.result import AsyncResult

P = ParamSpec("P")
R = TypeVar("R")


class Task(FanOutMethods[P, R]):
    """A registered function. Calling it runs it here; :meth:`delay` runs it on a worker.

    Create tasks with :meth:`taskrpc.App.task`, not directly.

    Attributes:
        name: The name the task is registered and requested under.
        queue: The queue its requests are routed to.
        retry: Retry policy for failures of the task itself on the worker (``None``: the
            app's). Publishing again is a different thing, named ``publish_retry``.
        timeouts: Call deadline and run-time limits (``None``: the app's).
        idempotent: Running it twice is harmless, so the client may resend it on its own.
        serializer: Serializer of its requests (``None``: the app's); for a bare task, the
            format plain clients use on its queue.
        reply_serializer: Serializer of its replies (``None``: the request's).
        bare: Serve requests without taskrpc headers on its queue: the body, decoded with
            ``serializer``, is the argument; the reply body is the bare result.
        throws: Exception types that are part of the task's contract: a failure with one
            is logged at WARNING, any other at ERROR (both with the traceback).
        rate_limit: Most runs per worker, e.g. ``"100/s"``, ``"10/m"``, ``"5/h"``.
        ignore_result: Fire-and-forget: calls ask for no reply (see :meth:`publish`).
        priority: Default priority of its requests (see ``Settings.max_priority``).
        signature: Argument and result validation derived from the type hints.
    """

    def __init__(
        self,
        app: App,
        fn: Callable[P, Any],
        *,
        name: str,
        queue: str | None,
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
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self._queue = queue
        self.retry = retry
        self.timeouts = timeouts
        self.idempotent = idempotent
        self.serializer = serializer
        self.reply_serializer = reply_serializer
        self.bare = bare
        self.throws = throws
        if rate_limit is not None:
            parse_rate(rate_limit)  # fail at definition, not on the worker
        self.rate_limit = rate_limit
        self.ignore_result = ignore_result
        self.priority = priority
        self.signature = Signature(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)

    @property
    def queue(self) -> str:
        """The task's own queue, or else the app's default queue (read at call time)."""
        return self._queue or self.app.settings.default_queue

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Run the function in this process, without validation, as a plain call would.

        Typed in the subclasses: a plain function's result, or a coroutine to await.
        """
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name!r} queue={self.queue!r}>"

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send a request to run the task on a worker, with the task's default options.

        Raises:
            InvalidArguments: The arguments do not fit the task's signature (checked here,
                before anything is sent).

        Example:
            >>> fib.delay(30).get(timeout=5)  # doctest: +SKIP
            832040
        """
        return self.with_options().delay(*args, **kwargs)

    def with_options(
        self,
        *,
        timeout: float | None = None,
        queue: str | None = None,
        publish_retry: RetryPolicy | None = None,
        serializer: str | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        priority: int | None = None,
    ) -> BoundCall[P, R]:
        """This task with call options, its calls still checked by the type checker.

        :meth:`apply_async` takes ``args`` and ``kwargs`` as a tuple and a dict, which a
        type checker cannot match against the task's signature; this can.

        Example:
            >>> add.with_options(timeout=5, queue="urgent").delay(1, 2)  # doctest: +SKIP
        """
        options = CallOptions(
            timeout=timeout,
            queue=queue,
            publish_retry=publish_retry,
            serializer=serializer,
            countdown=countdown,
            eta=eta,
            priority=priority,
        )
        return BoundCall(self, options)

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        queue: str | None = None,
        publish_retry: RetryPolicy | None = None,
        serializer: str | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        priority: int | None = None,
    ) -> AsyncResult[R]:
        """Send a request with explicit options (the Celery shape: ``args`` and ``kwargs``).

        Parameters:
            args: Positional arguments, a tuple or a list.
            kwargs: Keyword arguments, a dict.
            timeout: Seconds the call may take, from now; ``None`` uses the task's
                ``timeouts.call``, else the app's ``default_timeout``.
            queue: Route to this queue instead of the task's own.
            publish_retry: How the client publishes again when that is safe (``None``: the
                app's ``publish_retry`` policy).
            serializer: Serializer of this request and its reply (``None``: the task's,
                else the app's); e.g. ``"msgpack"``.
            countdown: Seconds to wait before the request reaches its queue; the broker
                holds it meanwhile (see :mod:`taskrpc.delays`), and ``timeout`` counts
                from then.
            eta: The time the request is due, instead of ``countdown`` (a naive
                ``datetime`` is local time).
            priority: The request's priority, 0 to ``Settings.max_priority`` (``None``:
                the task's); higher runs first among the requests waiting in its queue.

        Returns:
            A handle whose :meth:`~taskrpc.AsyncResult.get` returns the validated result.

        Raises:
            TypeError: ``args`` is not a tuple or list, or ``kwargs`` not a dict.
            InvalidArguments: The arguments do not fit the task's signature.
            ConfigurationError: Both ``countdown`` and ``eta``, a delay too long, or a
                priority the queue cannot do.
        """
        options = CallOptions(
            timeout=timeout,
            queue=queue,
            publish_retry=publish_retry,
            serializer=serializer,
            countdown=countdown,
            eta=eta,
            priority=priority,
        )
        return self._send(args, kwargs, options)

    async def send_async(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        queue: str | None = None,
        publish_retry: RetryPolicy | None = None,
        serializer: str | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        priority: int | None = None,
    ) -> AsyncCall[R]:
        """Like :meth:`apply_async`, through the app's asyncio client; await the handle.

        Example:
            >>> call = await fib.send_async((30,), timeout=5)  # doctest: +SKIP
            >>> await call  # doctest: +SKIP
            832040
        """
        options = CallOptions(
            timeout=timeout,
            queue=queue,
            publish_retry=publish_retry,
            serializer=serializer,
            countdown=countdown,
            eta=eta,
            priority=priority,
        )
        return await self._send_async(args, kwargs, options)

    def publish(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Fire-and-forget: send a request that asks for no reply; return its id once the
        broker has confirmed it.

        Without a timeout (from :meth:`with_options`) the request never expires; it is
        persistent if ``Settings.persistent_jobs`` (the default); a failure is logged by
        the worker with its traceback. No reply is sent, so none is counted as unknown.

        Raises:
            InvalidArguments: The arguments do not fit the task's signature.
            Unroutable, BrokerError: The broker did not take the request.

        Example:
            >>> send_welcome_email.publish("ada@example.com")  # doctest: +SKIP
            '5f0c…'
        """
        return self._publish(args, kwargs, CallOptions())

    async def publish_async(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """:meth:`publish` through the asyncio client."""
        return await self._publish_async(args, kwargs, CallOptions())

    async def call_async(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task on a worker and await its result (the asyncio :meth:`delay`).

        Example:
            >>> await fib.call_async(30)  # doctest: +SKIP
            832040
        """
        return await self.with_options().call_async(*args, **kwargs)

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task here as a worker would: validate the arguments, run the function,
        validate the result. A coroutine function runs to completion in a fresh event loop.

        Raises:
            InvalidArguments: The arguments do not fit the signature.
        """
        value = self.execute(list(args), dict(kwargs))
        return self.signature.load_result(self.signature.dump_result(value))  # type: ignore[no-any-return]

    def execute(self, args: list[Any], kwargs: dict[str, Any], *, strict: bool = False) -> Any:
        """Validate the arguments, run the function and return what it returned.

        This is what a worker does with a request. Coroutine functions run to completion
        in a fresh event loop. ``strict``: see ``Signature.validate`` (in
        ``taskrpc.signature``).
        """
        call_args, call_kwargs = self.signature.validate(args, kwargs, strict=strict)
        value = self.fn(*call_args, **call_kwargs)
        if self.is_async:
            value = asyncio.run(value)
        return value

    def check_call(self, args: Any, kwargs: Any) -> None:
        """Check a call's shape and arguments here, before anything is sent.

        Raises:
            TypeError: ``args`` is not a tuple or list, or ``kwargs`` not a dict or ``None``.
            InvalidArguments: The arguments do not fit the signature (the same error, with
                the same ``details``, that the worker would answer).
        """
        if not isinstance(args, (tuple, list)):
            raise TypeError(
                f"{self.name}: args must be a tuple or a list, got {type(args).__name__} "
                "(apply_async takes the arguments as one tuple: apply_async((1, 2)))"
            )
        if kwargs is not None and not isinstance(kwargs, dict):
            raise TypeError(f"{self.name}: kwargs must be a dict, got {type(kwargs).__name__}")
        if self.bare or not self.app.settings.check_arguments:
            return
        self.signature.validate(list(args), dict(kwargs or {}))

    def _send(self, args: Any, kwargs: Any, options: CallOptions) -> AsyncResult[R]:
        self.check_call(args, kwargs)
        send = client_options(self, options)
        return self.app.client.send(self.name, args, kwargs, fire=self.ignore_result, **send)

    def _publish(self, args: Any, kwargs: Any, options: CallOptions) -> str:
        self.check_call(args, kwargs)
        publish = publish_options(self, options)
        return self.app.client.publish(self.name, args, kwargs, **publish)

    async def _publish_async(self, args: Any, kwargs: Any, options: CallOptions) -> str:
        self.check_call(args, kwargs)
        publish = publish_options(self, options)
        return await self.app.async_client.publish(self.name, args, kwargs, **publish)

    async def _send_async(self, args: Any, kwargs: Any, options: CallOptions) -> AsyncCall[R]:
        self.check_call(args, kwargs)
        client = self.app.async_client
        send = client_options(self, options)
        return await client.send(self.name, args, kwargs, fire=self.ignore_result, **send)


class FunctionTask(Task[P, R]):
    """A task made from a plain function: calling it here returns its result."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function in this process, without validation, as a plain call would."""
        return self.fn(*args, **kwargs)  # type: ignore[no-any-return]


class CoroutineTask(Task[P, R]):
    """A task made from a coroutine function: calling it here returns a coroutine."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        """Call the coroutine function in this process (await the result)."""
        return self.fn(*args, **kwargs)  # type: ignore[no-any-return]
