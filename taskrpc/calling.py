"""Call options, and a task bound to them so that its calls stay type-checked."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from typing import TYPE_CHECKING, Generic, ParamSpec, TypeVar

from .delays import MAX_DELAY
from .exceptions import ConfigurationError
from .policies import RetryPolicy

if TYPE_CHECKING:
    from .client.aio import AsyncCall
    from .client.result import AsyncResult
    from .task import Task

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CallOptions:
    """How one call is sent; every field ``None`` means "the task's, else the app's".

    Parameters:
        timeout: Seconds the call may take, from now.
        queue: Route to this queue instead of the task's own.
        publish_retry: How the client publishes again when that is provably safe.
        serializer: Serializer of the request and its reply, e.g. ``"msgpack"``.
        countdown: Seconds before the request reaches its queue (held by the broker).
        eta: When the request is due, instead of ``countdown``.
        priority: The request's priority (queues declared with ``max_priority``).

    Raises:
        ConfigurationError: Both ``countdown`` and ``eta``, or a delay too long.
    """

    timeout: float | None = None
    queue: str | None = None
    publish_retry: RetryPolicy | None = None
    serializer: str | None = None
    countdown: float | None = None
    eta: datetime | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        if self.countdown is not None and self.eta is not None:
            raise ConfigurationError("give countdown or eta, not both")
        if self.delay() > MAX_DELAY:
            raise ConfigurationError(f"a delay over {MAX_DELAY:g} s is too long")

    def delay(self) -> float:
        """Seconds from now until the request is due (0: at once)."""
        if self.eta is not None:
            return max(0.0, self.eta.timestamp() - time.time())
        return max(0.0, self.countdown or 0.0)


class BoundCall(Generic[P, R]):
    """A task with fixed call options; made by :meth:`taskrpc.Task.with_options`."""

    def __init__(self, task: Task[P, R], options: CallOptions) -> None:
        self.task = task
        self.options = options

    def __repr__(self) -> str:
        return f"<BoundCall {self.task.name!r} {self.options}>"

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the request with these options; see :meth:`taskrpc.Task.delay`."""
        return self.task._send(args, kwargs, self.options)

    async def send_async(self, *args: P.args, **kwargs: P.kwargs) -> AsyncCall[R]:
        """Send the request through the asyncio client; await the returned handle."""
        return await self.task._send_async(args, kwargs, self.options)

    def publish(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Send a fire-and-forget request with these options (:meth:`taskrpc.Task.publish`)."""
        return self.task._publish(args, kwargs, self.options)

    async def publish_async(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """:meth:`publish` through the asyncio client."""
        return await self.task._publish_async(args, kwargs, self.options)

    async def call_async(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Send the request through the asyncio client and await its result."""
        return await (await self.task._send_async(args, kwargs, self.options))
