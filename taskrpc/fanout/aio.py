"""Fan-out for asyncio: await many :class:`~taskrpc.AsyncCall` handles at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from ..exceptions import ConfigurationError, TimeoutError
from .deadline import Deadline

if TYPE_CHECKING:
    from ..client.aio import AsyncCall

R = TypeVar("R")
T = TypeVar("T")


async def gather_async(
    calls: Iterable[AsyncCall[R]],
    *,
    timeout: float | None = None,
    return_exceptions: bool = False,
) -> list[Any]:
    """Await every handle and return their results in order; see :func:`gather`.

    Example:
        >>> calls = [await add.send_async((1, 2)), await add.send_async((3, 4))]  # doctest: +SKIP
        >>> await gather_async(calls, timeout=10)  # doctest: +SKIP
        [3, 7]
    """
    deadline = Deadline(timeout)
    return [await _settle(call, deadline, return_exceptions) for call in list(calls)]


async def as_completed_async(
    calls: Iterable[AsyncCall[R]], *, timeout: float | None = None
) -> AsyncIterator[AsyncCall[R]]:
    """Yield each handle once it has settled, first settled first; see :func:`as_completed`.

    Raises:
        TimeoutError: ``timeout`` seconds passed with handles still pending.
    """
    deadline = Deadline(timeout)
    waiting = {asyncio.ensure_future(_quietly(call)): call for call in calls}
    try:
        while waiting:
            done, _ = await asyncio.wait(
                waiting, timeout=deadline.left(), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                raise deadline.error(len(waiting))
            for future in done:
                yield waiting.pop(future)
    finally:
        for future in waiting:
            future.cancel()


async def map_async(
    send: Callable[[T, float | None], Awaitable[AsyncCall[R]]],
    items: Iterable[T],
    *,
    max_in_flight: int,
    timeout: float | None,
    return_exceptions: bool,
) -> list[Any]:
    """Send one call per item, at most ``max_in_flight`` outstanding; results in order.

    What :meth:`Task.map_async <taskrpc.Task.map_async>` runs. Raising the first error
    cancels the calls not yet sent.
    """
    if max_in_flight < 1:
        raise ConfigurationError(f"max_in_flight must be at least 1, got {max_in_flight}")
    deadline = Deadline(timeout)
    slots = asyncio.Semaphore(max_in_flight)

    async def one(item: T) -> Any:
        async with slots:
            if deadline.expired():
                return _failed(deadline.error(1), return_exceptions)
            try:
                call = await send(item, deadline.left())
            except Exception as exc:
                return _failed(exc, return_exceptions)
            return await _settle(call, deadline, return_exceptions)

    runs = [asyncio.ensure_future(one(item)) for item in items]
    try:
        return list(await asyncio.gather(*runs))
    finally:
        for run in runs:
            run.cancel()


async def _settle(call: AsyncCall[R], deadline: Deadline, return_exceptions: bool) -> Any:
    try:
        return await call.get(timeout=deadline.left())
    except TimeoutError as exc:
        error = deadline.error(1) if deadline.expired() else exc
        return _failed(error, return_exceptions)
    except Exception as exc:
        return _failed(exc, return_exceptions)


async def _quietly(call: AsyncCall[Any]) -> None:
    """Wait until ``call`` settles, whatever its outcome (read later by the caller)."""
    try:
        await call.get()
    except Exception:
        pass


def _failed(error: Exception, return_exceptions: bool) -> Exception:
    if return_exceptions:
        return error
    raise error
