"""Fan-out for threads: wait on many :class:`~taskrpc.AsyncResult` handles at once."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from ..exceptions import ConfigurationError, TimeoutError
from .deadline import Deadline

if TYPE_CHECKING:
    from ..client.result import AsyncResult

R = TypeVar("R")
T = TypeVar("T")

#: Longest pause between two looks at handles that are not ready (seconds).
MAX_POLL = 0.02


def gather(
    results: Iterable[AsyncResult[R]],
    *,
    timeout: float | None = None,
    return_exceptions: bool = False,
) -> list[Any]:
    """Wait for every handle and return their results, in the handles' order.

    Parameters:
        results: Handles of calls in flight.
        timeout: Seconds for all of them together; ``None``: each call's own deadline.
        return_exceptions: Put each call's error in the list in place of its result,
            instead of raising the first one met.

    Raises:
        TimeoutError: The overall timeout passed (only if ``return_exceptions`` is false;
            otherwise the pending calls' places hold a ``TimeoutError``).
        RemoteError: A call failed (only if ``return_exceptions`` is false).

    Example:
        >>> gather([add.delay(1, 2), add.delay(3, 4)], timeout=10)  # doctest: +SKIP
        [3, 7]
    """
    deadline = Deadline(timeout)
    return [_settle(handle, deadline, return_exceptions) for handle in list(results)]


def as_completed(
    results: Iterable[AsyncResult[R]], *, timeout: float | None = None
) -> Iterator[AsyncResult[R]]:
    """Yield each handle once its reply (or failure) is in, first settled first.

    ``get()`` on a yielded handle does not wait. Waiting polls the handles' ``ready()``,
    which reads what the broker has sent, backing off to 20 ms between looks.

    Raises:
        TimeoutError: ``timeout`` seconds passed with handles still pending.
    """
    deadline = Deadline(timeout)
    pending = list(results)
    pause = 0.0005
    while pending:
        ready = [handle for handle in pending if handle.ready()]
        if ready:
            pending = [handle for handle in pending if handle not in ready]
            yield from ready
            pause = 0.0005
            continue
        if deadline.expired():
            raise deadline.error(len(pending))
        left = deadline.left()
        time.sleep(pause if left is None else min(pause, left))
        pause = min(pause * 2, MAX_POLL)


def map_sync(
    send: Callable[[T, float | None], AsyncResult[R]],
    items: Iterable[T],
    *,
    max_in_flight: int,
    timeout: float | None,
    return_exceptions: bool,
) -> list[Any]:
    """Send one call per item, at most ``max_in_flight`` outstanding; results in order.

    ``send(item, seconds_left)`` publishes one call whose own timeout is what is left of
    the overall one. What :meth:`Task.map <taskrpc.Task.map>` runs.
    """
    if max_in_flight < 1:
        raise ConfigurationError(f"max_in_flight must be at least 1, got {max_in_flight}")
    deadline = Deadline(timeout)
    results: list[Any] = []
    window: collections.deque[tuple[int, AsyncResult[R]]] = collections.deque()
    for index, item in enumerate(items):
        if len(window) >= max_in_flight:
            place, handle = window.popleft()
            results[place] = _settle(handle, deadline, return_exceptions)
        results.append(None)
        if deadline.expired():
            results[index] = _failed(deadline.error(1), return_exceptions)
            continue
        try:
            window.append((index, send(item, deadline.left())))
        except Exception as exc:
            results[index] = _failed(exc, return_exceptions)
    for place, handle in window:
        results[place] = _settle(handle, deadline, return_exceptions)
    return results


def _settle(handle: AsyncResult[R], deadline: Deadline, return_exceptions: bool) -> Any:
    try:
        return handle.get(timeout=deadline.left())
    except TimeoutError as exc:
        error = deadline.error(1) if deadline.expired() else exc
        return _failed(error, return_exceptions)
    except Exception as exc:
        return _failed(exc, return_exceptions)


def _failed(error: Exception, return_exceptions: bool) -> Exception:
    if return_exceptions:
        return error
    raise error
