"""The fan-out methods of a task: :meth:`~taskrpc.Task.map`, ``starmap`` and their
asyncio twins, as a mixin of :class:`~taskrpc.Task`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, cast

from ..calling import CallOptions
from .aio import map_async
from .sync import map_sync

if TYPE_CHECKING:
    from ..client.aio import AsyncCall
    from ..client.result import AsyncResult

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class _OneArgument(Protocol[T_contra, R]):
    """A task of one argument, as :meth:`Task.map` needs it typed."""

    def delay(self, item: T_contra, /) -> AsyncResult[R]: ...


class FanOutMethods(Generic[P, R]):
    """Many calls of one task at once (the methods :class:`~taskrpc.Task` inherits)."""

    def _send(self, args: Any, kwargs: Any, options: CallOptions) -> AsyncResult[R]:
        raise NotImplementedError

    async def _send_async(self, args: Any, kwargs: Any, options: CallOptions) -> AsyncCall[R]:
        raise NotImplementedError

    def map(
        self: _OneArgument[T, R],
        items: Iterable[T],
        *,
        max_in_flight: int = 100,
        timeout: float | None = None,
        return_exceptions: bool = False,
    ) -> list[R]:
        """Call a one-argument task once per item, on workers; return the results in order.

        Parameters:
            items: One argument per call.
            max_in_flight: Calls outstanding at most; the next is sent as one finishes.
            timeout: Seconds for all the calls together (each call's deadline is what is
                left when it is sent); ``None``: each call's own timeout.
            return_exceptions: Put a failed call's error in its place in the list instead
                of raising the first one (the list then holds results and exceptions).

        Raises:
            RemoteError, TimeoutError: The first failure, if ``return_exceptions`` is false.

        Example:
            >>> square.map(range(10), max_in_flight=4, timeout=30)  # doctest: +SKIP
            [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
        """
        task = cast("FanOutMethods[..., R]", self)
        return map_sync(
            lambda item, left: task._send((item,), None, CallOptions(timeout=left)),
            items,
            max_in_flight=max_in_flight,
            timeout=timeout,
            return_exceptions=return_exceptions,
        )

    def starmap(
        self,
        items: Iterable[Sequence[Any]],
        *,
        max_in_flight: int = 100,
        timeout: float | None = None,
        return_exceptions: bool = False,
    ) -> list[R]:
        """Like :meth:`map`, each item being the positional arguments of one call.

        Each call's arguments are checked against the signature as it is sent (a type
        checker cannot see inside the tuples).
        """
        return map_sync(
            lambda item, left: self._send(tuple(item), None, CallOptions(timeout=left)),
            items,
            max_in_flight=max_in_flight,
            timeout=timeout,
            return_exceptions=return_exceptions,
        )

    async def map_async(
        self: _OneArgument[T, R],
        items: Iterable[T],
        *,
        max_in_flight: int = 100,
        timeout: float | None = None,
        return_exceptions: bool = False,
    ) -> list[R]:
        """:meth:`map` through the asyncio client."""
        task = cast("FanOutMethods[..., R]", self)
        return await map_async(
            lambda item, left: task._send_async((item,), None, CallOptions(timeout=left)),
            items,
            max_in_flight=max_in_flight,
            timeout=timeout,
            return_exceptions=return_exceptions,
        )

    async def starmap_async(
        self,
        items: Iterable[Sequence[Any]],
        *,
        max_in_flight: int = 100,
        timeout: float | None = None,
        return_exceptions: bool = False,
    ) -> list[R]:
        """:meth:`starmap` through the asyncio client."""
        return await map_async(
            lambda item, left: self._send_async(tuple(item), None, CallOptions(timeout=left)),
            items,
            max_in_flight=max_in_flight,
            timeout=timeout,
            return_exceptions=return_exceptions,
        )
