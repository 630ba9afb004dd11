"""How a task's call is handed to a client: its options, the task's defaults filled in.

Both clients take the same keyword arguments; a fire-and-forget publish takes all but
those about the reply (:func:`publish_options`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .calling import CallOptions
from .queues import check_priority

if TYPE_CHECKING:
    from .task import Task


def client_options(task: Task[Any, Any], options: CallOptions) -> dict[str, Any]:
    """``options`` with the defaults of ``task`` filled in, as the clients' ``send`` takes them.

    Raises:
        ConfigurationError: A priority the queue cannot do.
    """
    timeout = options.timeout
    if timeout is None and task.timeouts is not None and not task.ignore_result:
        timeout = task.timeouts.call
    queue = options.queue or task.queue
    priority = task.priority if options.priority is None else options.priority
    check_priority(task.app.settings, queue, priority)
    return {
        "timeout": timeout,
        "queue": queue,
        "load_result": task.signature.load_result,
        "retry": options.publish_retry,
        "idempotent": task.idempotent,
        "serializer": options.serializer,
        "delay": options.delay(),
        "priority": priority,
    }


def publish_options(task: Task[Any, Any], options: CallOptions) -> dict[str, Any]:
    """:func:`client_options` as the clients' ``publish`` takes them (no reply to read)."""
    publish = client_options(task, options)
    del publish["load_result"], publish["idempotent"]
    return publish
