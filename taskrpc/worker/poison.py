"""Poison requests: the dead-letter queue of quorum task queues, and its answers.

A quorum queue counts the deliveries of each request. One that comes back more than
``Settings.delivery_limit`` times (each worker that took it was lost before acking: a
task that kills its process, say) is dead-lettered to ``Settings.dead_letter_queue``.
Workers consume that queue with their task queues and answer each such request with
:exc:`~taskrpc.PoisonRequest`, so its caller learns why well before its deadline, and
log it. Requests dead-lettered for other reasons (expired in the queue, rejected by a
worker that answered already) are acknowledged without an answer.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import PoisonRequest
from ..messages import Outcome
from ..queues import DEAD_LETTER_QUEUE_ARGUMENTS, dead_letters_needed
from .admission import admit, refusal

if TYPE_CHECKING:
    from ..app import App
    from ..settings import Settings
    from ..transport import Transport
    from .executor import Job

logger = logging.getLogger("taskrpc.worker")

#: Header a quorum queue sets on each delivery: how many deliveries came before.
DELIVERY_COUNT = "x-delivery-count"
#: Dead-letter reason of a request that reached its delivery limit.
REASON_DELIVERY_LIMIT = "delivery_limit"

#: An outcome with nothing to publish: the request is acknowledged, and that is all.
SILENT = Outcome(ok=False, body=b"", content_type="")


def declare_dead_letters(transport: Transport, settings: Settings, queues: list[str]) -> list[str]:
    """Declare the dead-letter exchange and queue if a queue of ``queues`` is quorum.

    Returns:
        The dead-letter queue to consume with the task queues, or nothing.
    """
    if not dead_letters_needed(settings, queues):
        return []
    name = settings.dead_letter_queue
    transport.declare_exchange(name, "fanout", durable=True)
    transport.declare_queue(name, durable=True, arguments=DEAD_LETTER_QUEUE_ARGUMENTS)
    transport.bind_queue(name, name, "")
    return [name]


def delivery_count(headers: Mapping[str, Any], redelivered: bool) -> int:
    """Earlier deliveries of a request: the quorum queue's count, else what ``redelivered``
    proves."""
    count = headers.get(DELIVERY_COUNT)
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return count
    return int(redelivered)


def death_of(headers: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(reason, queue)`` of a dead-lettered request's first death, if any."""
    deaths = headers.get("x-death")
    if not isinstance(deaths, list) or not deaths or not isinstance(deaths[-1], dict):
        return None
    first = deaths[-1]  # RabbitMQ puts the most recent death first
    reason = headers.get("x-first-death-reason", first.get("reason"))
    queue = headers.get("x-first-death-queue", first.get("queue"))
    return str(reason), str(queue)


def settle_dead_letter(app: App, message: Any, job: Job) -> tuple[Any, Outcome] | None:
    """If ``message`` came from the dead-letter queue, what to do with it; else ``None``.

    Returns:
        The delivery as the loop should keep it (its ``reply_to`` removed when nothing
        is to be answered) and the outcome to publish.
    """
    name = app.settings.dead_letter_queue
    if not name or getattr(message, "exchange", None) != name:
        return None
    death = death_of(job.headers)
    if death is None or death[0] != REASON_DELIVERY_LIMIT:
        reason = death[0] if death else "unknown"
        logger.info("dead-lettered request %s [%s] (%s): dropped", job.task, job.request_id, reason)
        return _silenced(message), SILENT
    queue = death[1]
    # The dead-lettered copy is not marked redelivered, though its nonce was seen.
    refused = admit(app, dataclasses.replace(job, redelivered=True))
    if refused is not None:
        return message, refused
    deliveries = app.settings.delivery_limit + 1
    logger.error(
        "poison request %s [%s] on %r: dead-lettered after %d deliveries, each lost its "
        "worker; answering PoisonRequest",
        job.task,
        job.request_id,
        queue,
        deliveries,
    )
    error = PoisonRequest(
        f"request {job.request_id} for {job.task} was delivered {deliveries} times on "
        f"{queue!r} and every worker that took it was lost; dead-lettered, not run again",
        type_name="PoisonRequest",
        details={"delivery_count": deliveries, "queue": queue},
    )
    return message, refusal(app, job, error)


def _silenced(message: Any) -> Any:
    """``message`` (a NamedTuple with ``properties``) without its ``reply_to``."""
    properties = {k: v for k, v in message.properties.items() if k != "reply_to"}
    return message._replace(properties=properties)
