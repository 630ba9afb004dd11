"""The request being served, visible to the task that serves it."""

from __future__ import annotations

import contextvars
import dataclasses


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
