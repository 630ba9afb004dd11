"""What the consume loop reads off a delivery: the :class:`~.executor.Job` it asks for.

Nothing is checked or decoded here: the loop refuses what it must (see
:mod:`.admission`) before the job reaches a pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import delays
from ..messages import HEADER_DEADLINE, HEADER_TASK
from ..transport import Delivery
from .executor import Job
from .poison import delivery_count

if TYPE_CHECKING:
    from ..app import App


def job_of(message: Delivery, app: App) -> Job:
    """The job ``message`` asks for (nothing is checked or decoded yet)."""
    properties = message.properties
    headers = message.headers or {}
    task = headers.get(HEADER_TASK)
    deadline = headers.get(HEADER_DEADLINE)
    # A delayed request keeps the routing key it crossed the delay cascade with.
    routing_key = delays.destination(message.routing_key or "")
    redelivered = message.redelivered
    plain = not any(str(name).startswith("taskrpc-") for name in headers)
    bare = app.bare_task(routing_key) if plain else None  # a plain client, on a bare queue
    if bare is not None:
        task = bare.name
    return Job(
        request_id=str(properties.get("correlation_id") or properties.get("message_id") or ""),
        task=task if isinstance(task, str) else "",
        body=message.body,
        content_type=message.content_type or None,
        content_encoding=message.content_encoding or None,
        headers=headers,
        deadline=float(deadline) if isinstance(deadline, (int, float)) else None,
        redelivered=redelivered,
        delivery_count=delivery_count(headers, redelivered),
        reply_to=properties.get("reply_to") or None,
        routing_key=routing_key,
        bare=bare is not None,
    )
