"""Task queue arguments: the queue type, delivery limit and dead-lettering, in one place.

Client and worker both declare task queues, and RabbitMQ refuses a declaration whose
arguments differ from the queue's, so both build them here, from the same settings.

``classic`` queues (the default) are declared with no type argument at all, as before,
and with ``x-max-priority`` when ``Settings.max_priority`` is set;
in a virtual host whose default queue type is ``quorum`` they become quorum queues
unchanged. ``quorum`` queues are declared with::

    x-queue-type            "quorum"
    x-delivery-limit        Settings.delivery_limit   (a request delivered that many times
                                                        more is dead-lettered)
    x-dead-letter-exchange  Settings.dead_letter_queue (omitted when that is "")

The worker declares the dead-letter exchange (``fanout``, durable) and queue (a quorum
queue, durable) of the same name, bound together, and consumes the queue: it answers
each request dead-lettered for its delivery limit with :exc:`~taskrpc.PoisonRequest`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from .settings import Settings

#: Queue types a setting may name.
QUEUE_TYPES = ("classic", "quorum")

#: RabbitMQ's refusal of a declaration whose arguments differ from the queue's.
_INEQUIVALENT = re.compile(r"inequivalent arg '([\w-]+)' for queue '([^']*)'.*?current is (.*)$")

#: Which setting decides each queue argument, for the message that says what to change.
_SETTING_OF = {
    "x-queue-type": "queue_type (TASKRPC_QUEUE_TYPE, or queue_types for this queue alone)",
    "x-delivery-limit": "delivery_limit (TASKRPC_DELIVERY_LIMIT)",
    "x-dead-letter-exchange": "dead_letter_queue (TASKRPC_DEAD_LETTER_QUEUE)",
    "x-max-priority": "max_priority (TASKRPC_MAX_PRIORITY)",
}


def queue_type(settings: Settings, name: str) -> str:
    """The type of queue ``name``: its entry in ``queue_types``, else ``queue_type``."""
    return per_queue_types(settings).get(name, settings.queue_type)


def per_queue_types(settings: Settings) -> dict[str, str]:
    """``settings.queue_types`` (``"queue=type"`` entries) as a dict.

    Raises:
        ConfigurationError: An entry is malformed or names an unknown type.
    """
    types = {}
    for entry in settings.queue_types:
        name, sep, kind = entry.rpartition("=")
        if not sep or not name.strip():
            raise ConfigurationError(f"queue_types entry {entry!r} is not 'queue=type'")
        types[name.strip()] = check_type(kind.strip(), f"queue_types entry {entry!r}")
    return types


def check_type(kind: str, where: str = "queue_type") -> str:
    """``kind`` if it is a known queue type.

    Raises:
        ConfigurationError: It is not.
    """
    if kind not in QUEUE_TYPES:
        raise ConfigurationError(
            f"{where}: unknown queue type {kind!r} (choose from {', '.join(QUEUE_TYPES)})"
        )
    return kind


def queue_arguments(settings: Settings, name: str) -> dict[str, Any]:
    """The ``queue.declare`` arguments of task queue ``name`` (see the module docstring)."""
    arguments: dict[str, Any] = {}
    if settings.max_priority and queue_type(settings, name) == "classic":
        arguments["x-max-priority"] = settings.max_priority
    if queue_type(settings, name) == "quorum":
        arguments["x-queue-type"] = "quorum"
        arguments["x-delivery-limit"] = settings.delivery_limit
        if settings.dead_letter_queue:
            arguments["x-dead-letter-exchange"] = settings.dead_letter_queue
    return arguments


def check_priority(settings: Settings, queue: str, priority: int | None) -> None:
    """Refuse a ``priority`` that queue ``queue`` cannot order by.

    Raises:
        ConfigurationError: Priorities are off (``max_priority`` 0), the queue is a quorum
            queue (RabbitMQ 3.x quorum queues have no ``x-max-priority``), or the
            priority is outside ``0..max_priority``.
    """
    if priority is None:
        return
    if queue_type(settings, queue) == "quorum":
        raise ConfigurationError(
            f"queue {queue!r} is a quorum queue, which cannot order requests by priority; "
            "use a classic queue (queue_types) for prioritised tasks"
        )
    if not settings.max_priority:
        raise ConfigurationError(
            "priority= needs task queues declared with x-max-priority: set max_priority "
            "(TASKRPC_MAX_PRIORITY) on the clients and the workers"
        )
    if not 0 <= priority <= settings.max_priority:
        raise ConfigurationError(
            f"priority {priority} is outside 0..{settings.max_priority} (max_priority)"
        )


def dead_letters_needed(settings: Settings, names: list[str]) -> bool:
    """Whether a worker consuming ``names`` declares and consumes the dead-letter queue."""
    return bool(settings.dead_letter_queue) and any(
        queue_type(settings, name) == "quorum" for name in names
    )


#: Why a request the broker neither confirmed nor refused may be stuck, for errors.
UNCONFIRMED = (
    "no quorum? a quorum queue takes no requests while a majority of its nodes is down; "
    "the request may still be queued, and run once they return"
)

#: Arguments of the dead-letter queue itself: replicated, with no dead-lettering of its own.
DEAD_LETTER_QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}


def explain_refusal(text: str) -> str | None:
    """For RabbitMQ's "inequivalent arg" refusal, a sentence naming the setting to change."""
    match = _INEQUIVALENT.search(text)
    if match is None:
        return None
    argument, queue, current = match.groups()
    setting = _SETTING_OF.get(argument)
    if setting is None:
        return None
    current = current.replace("the value ", "").split(" of type")[0]
    type_setting = _SETTING_OF["x-queue-type"]
    if argument == "x-queue-type":
        kind = "classic" if current == "none" else current.strip("'")
        found, change = f"exists as a {kind} queue", type_setting
    elif current == "none":  # RabbitMQ names the first difference it checks, not the type
        found = (
            f"exists without {argument} (a classic queue, or a quorum queue declared without it)"
        )
        change = f"{type_setting} or {setting}"
    else:
        found, change = f"exists with {argument} {current}", setting
    return (
        f"queue {queue!r} {found}, unlike this app's declaration of it: change the "
        f"setting {change} to match, or delete the queue"
    )
