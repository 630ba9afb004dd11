"""The request being served, visible to the task that serves it."""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import threading
from collections.abc import Iterable

from .exceptions import ConfigurationError


@dataclasses.dataclass(frozen=True, slots=True)
class RequestContext:
    """What a running task may want to know about its request.

    Attributes:
        id: The request id (``correlation_id``).
        task: The task name.
        retries: Retries made so far on this worker (0 on the first try).
        last_error: ``repr`` of the error that caused the current retry, if any.
        deadline: Absolute deadline, seconds since the epoch, if the caller set one.
        redelivered: Whether the broker had delivered this request before (it may have run).
        delivery_count: Earlier deliveries of this request, as a quorum queue counts them
            (``x-delivery-count``); classic queues do not count, so there it is 1 if
            redelivered, else 0.
    """

    id: str
    task: str
    retries: int = 0
    last_error: str | None = None
    deadline: float | None = None
    redelivered: bool = False
    delivery_count: int = 0


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "taskrpc_request", default=None
)


def current_request() -> RequestContext | None:
    """The request the calling task is serving, or ``None`` outside a task.

    Example:
        >>> current_request() is None
        True
    """
    return _current.get()


def set_current(context: RequestContext | None) -> contextvars.Token[RequestContext | None]:
    """Make ``context`` current (the executor does this around each try)."""
    return _current.set(context)


#: Queues consumed by workers running in this process (a count per queue name).
_serving: collections.Counter[str] = collections.Counter()
_serving_lock = threading.Lock()


def add_serving(queues: Iterable[str]) -> None:
    """Record that a worker in this process consumes ``queues`` (the worker calls it)."""
    with _serving_lock:
        _serving.update(queues)


def remove_serving(queues: Iterable[str]) -> None:
    """Undo :func:`add_serving`."""
    with _serving_lock:
        _serving.subtract(queues)
        for queue in [q for q, n in _serving.items() if n <= 0]:
            del _serving[queue]


def check_wait(task: str, queue: str | None, allowed: bool) -> None:
    """Refuse to wait, from inside a task, for a call to a queue this process serves.

    The task holds a slot of the worker's pool while it waits; if every slot waits so,
    nothing is left to run what they wait for, and all of them time out (Celery refuses
    this too). Waiting on another worker's queue is fine.

    Raises:
        ConfigurationError: The wait could deadlock and was not allowed.
    """
    if allowed or queue is None or current_request() is None or queue not in _serving:
        return
    raise ConfigurationError(
        f"waiting for {task} from inside a task, on the queue {queue!r} this worker "
        "serves, can deadlock the worker's pool; send it and do not wait (publish), use "
        "a queue served by other workers, or allow it with get(allow_nested=True) or "
        "Settings.allow_nested_waits"
    )
