"""Call options, and a task bound to them so that its calls stay type-checked."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Generic, ParamSpec, TypeVar

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
    """

    timeout: float | None = None
    queue: str | None = None
    publish_retry: RetryPolicy | None = None
    serializer: str | None = None


class BoundCall(Generic[P, R]):
    """A task with fixed call options; made by :meth:`Task.with_options`."""

    def __init__(self, task: Task[P, R], options: CallOptions) -> None:
        self.task = task
        self.options = options

    def __repr__(self) -> str:
        return f"<BoundCall {self.task.name!r} {self.options}>"

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the request with these options; see :meth:`Task.delay`."""
        return self.task._send(args, kwargs, self.options)

    async def send_async(self, *args: P.args, **kwargs: P.kwargs) -> AsyncCall[R]:
        """Send the request through the asyncio client; await the returned handle."""
        return await self.task._send_async(args, kwargs, self.options)

    async def call_async(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Send the request through the asyncio client and await its result."""
        return await (await self.task._send_async(args, kwargs, self.options))
