"""Task: a function registered with an app, callable locally or on a worker."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from .policies import RetryPolicy, TimeoutPolicy
from .signature import Signature

if TYPE_CHECKING:
    from .app import App
    from .client.aio import AsyncCall
    from .client.result import AsyncResult

P = ParamSpec("P")
R = TypeVar("R")


class Task(Generic[P, R]):
    """A registered function. Calling it runs it here; :meth:`delay` runs it on a worker.

    Create tasks with :meth:`taskrpc.App.task`, not directly.

    Attributes:
        name: The name the task is registered and requested under.
        queue: The queue its requests are routed to.
        retry: Retry policy for failures of the task itself (``None``: the app's).
        timeouts: Call deadline and run-time limits (``None``: the app's).
        idempotent: Running it twice is harmless, so the client may resend it on its own.
        serializer: Serializer of its requests (``None``: the app's); for a bare task, the
            format plain clients use on its queue.
        reply_serializer: Serializer of its replies (``None``: the request's).
        bare: Serve requests without taskrpc headers on its queue: the body, decoded with
            ``serializer``, is the argument; the reply body is the bare result.
        signature: Argument and result validation derived from the type hints.
    """

    def __init__(
        self,
        app: App,
        fn: Callable[P, R],
        *,
        name: str,
        queue: str | None,
        retry: RetryPolicy | None = None,
        timeouts: TimeoutPolicy | None = None,
        idempotent: bool = False,
        serializer: str | None = None,
        reply_serializer: str | None = None,
        bare: bool = False,
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
        self.signature = Signature(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    @property
    def queue(self) -> str:
        """The task's own queue, or else the app's default queue (read at call time)."""
        return self._queue or self.app.settings.default_queue

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function in this process, without validation, as a plain call would."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name!r} queue={self.queue!r}>"

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send a request to run the task on a worker, with the app's default timeout.

        Example:
            >>> fib.delay(30).get(timeout=5)  # doctest: +SKIP
            832040
        """
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        serializer: str | None = None,
    ) -> AsyncResult[R]:
        """Send a request with explicit options.

        Parameters:
            args: Positional arguments.
            kwargs: Keyword arguments.
            timeout: Seconds the call may take, from now; ``None`` uses the task's
                ``timeouts.call``, else the app's ``default_timeout``.
            queue: Route to this queue instead of the task's own.
            retry: How the client publishes again when that is safe (``None``: the app's
                ``publish_retry`` policy).
            serializer: Serializer of this request and its reply (``None``: the task's,
                else the app's); e.g. ``"msgpack"``.

        Returns:
            A handle whose :meth:`~taskrpc.AsyncResult.get` returns the validated result.
        """
        options = self._send_options(timeout, queue, retry, serializer)
        return self.app.client.send(self.name, args, kwargs, **options)

    async def send_async(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        serializer: str | None = None,
    ) -> AsyncCall[R]:
        """Like :meth:`apply_async`, through the app's asyncio client; await the handle.

        Example:
            >>> call = await fib.send_async((30,), timeout=5)  # doctest: +SKIP
            >>> await call  # doctest: +SKIP
            832040
        """
        options = self._send_options(timeout, queue, retry, serializer)
        return await self.app.async_client.send(self.name, args, kwargs, **options)

    def _send_options(
        self,
        timeout: float | None,
        queue: str | None,
        retry: RetryPolicy | None,
        serializer: str | None,
    ) -> dict[str, Any]:
        """A call's options with this task's defaults filled in (both clients take them)."""
        if timeout is None and self.timeouts is not None:
            timeout = self.timeouts.call
        return {
            "timeout": timeout,
            "queue": queue or self.queue,
            "load_result": self.signature.load_result,
            "retry": retry,
            "idempotent": self.idempotent,
            "serializer": serializer,
        }

    async def call_async(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task on a worker and await its result (the asyncio :meth:`delay`).

        Example:
            >>> await fib.call_async(30)  # doctest: +SKIP
            832040
        """
        return await (await self.send_async(args, kwargs))

    def run(self, args: list[Any], kwargs: dict[str, Any], *, strict: bool = False) -> Any:
        """Validate the arguments, run the function and return what it returned.

        This is what a worker does with a request. Coroutine functions run to completion
        in a fresh event loop. ``strict``: see :meth:`Signature.validate
        <taskrpc.signature.Signature.validate>`.
        """
        call_args, call_kwargs = self.signature.validate(args, kwargs, strict=strict)
        value = self.fn(*call_args, **call_kwargs)  # type: ignore[arg-type]
        if self.is_async:
            value = asyncio.run(value)  # type: ignore[arg-type]
        return value
