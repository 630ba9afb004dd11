"""States, transitions, actions and errors of the client state machine
(:mod:`taskrpc.client.machine`, whose docstring states the invariants)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from ..exceptions import ConnectionLost, TaskRPCError, TimeoutError
from ..queues import UNCONFIRMED
from .replies import PendingCall

CONNECTING, READY, BLOCKED, CLOSED = "CONNECTING", "READY", "BLOCKED", "CLOSED"
QUEUED, SENT, CONFIRMED = "QUEUED", "SENT", "CONFIRMED"

#: (state, event) -> next state of the connection; anything else is illegal.
CONNECTION_TRANSITIONS: dict[tuple[str, str], str] = {
    (CONNECTING, "connected"): READY,
    (CONNECTING, "lost"): CONNECTING,  # an attempt failed
    (READY, "blocked"): BLOCKED,
    (READY, "unblocked"): READY,  # RabbitMQ may repeat itself: harmless
    (BLOCKED, "blocked"): BLOCKED,
    (BLOCKED, "unblocked"): READY,
    (READY, "lost"): CONNECTING,
    (BLOCKED, "lost"): CONNECTING,
    (CLOSED, "lost"): CLOSED,  # the driver's own close of the connection
    **{(state, "close"): CLOSED for state in (CONNECTING, READY, BLOCKED, CLOSED)},
    **{(state, "reset"): CONNECTING for state in (CONNECTING, READY, BLOCKED)},
}

#: (state, event) -> next state of a call not yet done; anything else is illegal.
CALL_TRANSITIONS: dict[tuple[str, str], str] = {
    (QUEUED, "send"): SENT,
    (SENT, "ack"): CONFIRMED,
    (SENT, "nack"): QUEUED,
    (SENT, "unsent"): QUEUED,
    (CONFIRMED, "unsend"): QUEUED,  # only without publisher confirms
    (SENT, "resend"): QUEUED,
    (CONFIRMED, "resend"): QUEUED,
}


class IllegalTransition(TaskRPCError):
    """An event the client state machine does not allow in its current state (a bug)."""


class Declare(NamedTuple):
    """Action: declare the task queue ``queue`` (once per connection) before publishing;
    :data:`taskrpc.delays.PREFIX` names the delay cascade."""

    queue: str


class Publish(NamedTuple):
    """Action: publish ``call``'s request with these AMQP ``properties`` (signed), to
    ``exchange`` with ``routing_key``, mandatory."""

    call: PendingCall
    properties: dict[str, Any]
    exchange: str
    routing_key: str


class Sent(NamedTuple):
    """Action: settle fire-and-forget ``call`` as sent (confirmed; no reply will come)."""

    call: PendingCall


class Fail(NamedTuple):
    """Action: settle ``call`` with ``error`` (it is already out of the machine)."""

    call: PendingCall
    error: BaseException


Action = Declare | Publish | Sent | Fail


def timeout_error(
    call: PendingCall, state: str, blocked_reason: str, last_error: str
) -> TimeoutError:
    """The error of ``call`` reaching its deadline with the connection in ``state``."""
    where = f"no reply for {call.task} [{call.id}]: its deadline passed"
    blocked = f"the broker blocks publishing: connection.blocked, {blocked_reason}"
    if call.state == QUEUED:
        if state == BLOCKED:
            why = blocked
        elif state == CONNECTING:
            why = f"no connection to the broker: {last_error or 'connecting'}"
        else:
            why = "the client closed"
        return TimeoutError(f"{where} before it could be published ({why})", started=False)
    if call.state == SENT and state == BLOCKED:
        return TimeoutError(f"{where}; the broker never confirmed it ({blocked})")
    if call.state == SENT:  # sent on a live connection, neither confirmed nor refused
        return TimeoutError(f"{where}; the broker never confirmed it ({UNCONFIRMED})")
    if call.rejected:
        where += f"; {call.rejected}"
    return TimeoutError(where)


def connection_lost(call: PendingCall, last_error: str, *, in_doubt: bool) -> ConnectionLost:
    """The error of a call that is not resent after the connection was lost."""
    if in_doubt:
        return ConnectionLost(
            f"connection lost after {call.task} [{call.id}] was published but before the "
            f"broker confirmed it: the request may have run ({last_error})"
        )
    return ConnectionLost(
        f"reply queue lost with the connection: {call.task} [{call.id}] reached the "
        f"broker and may have run; its reply cannot arrive ({last_error})"
    )


class Deadlines:
    """A heap of (deadline, call id) of queued calls; stale entries are skipped by the
    reader and compacted away when they outnumber the live ones."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []

    def add(self, call: PendingCall, queued: Mapping[str, PendingCall]) -> None:
        """Remember ``call``'s deadline; ``queued`` is every call still queued."""
        heapq.heappush(self._heap, (call.deadline, call.id))
        if len(self._heap) > 2 * len(queued) + 1024:  # mostly published since: compact
            self._heap = [(each.deadline, each.id) for each in queued.values()]
            heapq.heapify(self._heap)

    def due(self, now: float) -> Iterator[str]:
        """Take the ids whose deadline is ``now`` or earlier."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            yield heapq.heappop(heap)[1]

    def next(self) -> float | None:
        """The earliest deadline remembered."""
        return self._heap[0][0] if self._heap else None
