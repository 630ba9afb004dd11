"""Publishes the broker keeps unconfirmed too long: their calls fail fast with NoQuorum.

RabbitMQ (3.10 at least) neither confirms nor refuses a publish to a quorum queue that
has lost the majority of its nodes: the channel holds it, and queues it if the majority
returns. Its call would wait, silent, until its deadline. A :class:`ConfirmTimer` notes
when each publish to a quorum queue is due to be confirmed
(``Settings.publish_confirm_timeout`` after it was written); the client state machine
(:mod:`taskrpc.client.machine`) asks it for the overdue ones when it expires calls and
fails them with :exc:`~taskrpc.NoQuorum` (:func:`no_quorum`).

* Such a call is not sent again, even for an idempotent task: its first copy is still
  held by the broker (the publish is in doubt, not lost), and a second would wait
  behind it, on the same connection, and run twice once the majority returns.
* Publishes to classic queues are not watched: a classic queue has no quorum to lose,
  and a slow confirm there means a busy broker, whose calls wait for their deadline.
* Neither are publishes into the delay cascade (classic queues), nor those of a call
  whose deadline comes first: the deadline's error says the same.
* While the broker blocks the connection (``connection.blocked``), an overdue publish
  gets a new timeout instead: the broker said why it is silent.

The timer keeps ``(due, delivery tag)`` pairs in publishing order, which is also the
order they fall due; confirmed and failed publishes are dropped as they reach its head.
Delivery tags count from 1 on each connection: :meth:`ConfirmTimer.clear` forgets the
previous one's.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..exceptions import NoQuorum
from ..queues import queue_type
from .replies import PendingCall

if TYPE_CHECKING:
    from ..settings import Settings


class ConfirmTimer:
    """When the unconfirmed publishes of the current connection fall due.

    Parameters:
        timeout: Seconds a watched publish may stay unconfirmed; ``0`` watches none.
        watched: Whether publishes to a queue are watched (``None``: every queue's).
    """

    def __init__(self, timeout: float = 0.0, watched: Callable[[str], bool] | None = None):
        self.timeout = timeout
        self._watched = watched
        self._queues: dict[str, bool] = {}
        self._due: collections.deque[tuple[float, int]] = collections.deque()

    @classmethod
    def for_settings(cls, settings: Settings) -> ConfirmTimer:
        """Watching the quorum queues of ``settings`` for ``publish_confirm_timeout``."""
        return cls(
            settings.publish_confirm_timeout,
            lambda queue: queue_type(settings, queue) == "quorum",
        )

    def arm(self, tag: int, queue: str, now: float, deadline: float) -> None:
        """Publish ``tag`` to ``queue`` (of a call due at ``deadline``) was written at ``now``."""
        due = now + self.timeout
        if not self.timeout or due >= deadline:
            return
        watched = self._queues.get(queue)
        if watched is None:
            watched = self._watched is None or self._watched(queue)
            self._queues[queue] = watched
        if watched:
            self._due.append((due, tag))

    def clear(self) -> None:
        """A new connection: delivery tags count from 1 again."""
        self._due.clear()

    def next(self, unconfirmed: Mapping[int, PendingCall]) -> float | None:
        """When the oldest publish still in ``unconfirmed`` (tag -> call) falls due."""
        due = self._due
        while due:
            when, tag = due[0]
            call = unconfirmed.get(tag)
            if call is not None and not call.done:
                return when
            due.popleft()  # confirmed, refused or settled meanwhile
        return None

    def overdue(
        self, now: float, unconfirmed: Mapping[int, PendingCall], *, blocked: bool = False
    ) -> list[PendingCall]:
        """Take the calls whose publish is still unconfirmed and fell due by ``now``.

        With ``blocked`` (the broker blocks the connection), none: each gets a new timeout.
        """
        due = self._due
        calls: list[PendingCall] = []
        while due and due[0][0] <= now:
            tag = due.popleft()[1]
            call = unconfirmed.get(tag)
            if call is None or call.done:
                continue
            if blocked:
                self.arm(tag, call.request.queue, now, call.deadline)
            else:
                calls.append(call)
        return calls


def no_quorum(call: PendingCall, timeout: float, now: float) -> NoQuorum:
    """The error of ``call``, whose publish the broker left unconfirmed ``timeout`` s."""
    queue = call.request.queue if call.request is not None else "?"
    left = max(0.0, call.deadline - now)
    return NoQuorum(
        f"the broker did not confirm {call.task} [{call.id}] within {timeout:g} s: queue "
        f"{queue!r} probably has no quorum (most of its nodes down or cut off). The "
        f"request may still be queued, and run if the quorum returns within {left:.1f} s "
        f"(its deadline); it is not sent again"
    )
