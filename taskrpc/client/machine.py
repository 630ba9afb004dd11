"""The client core: calls and one broker connection, as a sans-I/O state machine.

Events come in as method calls (a call submitted, the connection up, a publish
confirmed, the connection lost, a deadline passed...) with the time they happened;
actions come out as a list the driver carries out in order: :class:`Declare` a queue,
:class:`Publish` a request, :class:`Fail` a call. Replies settle calls through the
:class:`~taskrpc.client.replies.ReplyRouter` the machine owns. There are no sockets, threads
or clocks in here: the drivers (:mod:`taskrpc.client.listener` for threads, the asyncio client
on top of it) serialise events under one lock and do the I/O, and the tests drive the
machine with plain event sequences. The events are here; the state they work on and the
steps they share (publishing a call among them) are its base,
:class:`~taskrpc.client.publishing.Publishing`.

Connection states (:data:`~taskrpc.client.states.CONNECTION_TRANSITIONS`)::

    CONNECTING --connected--> READY --blocked--> BLOCKED --unblocked--> READY
        ^                       |                   |
        +--------lost-----------+-------lost--------+        any --close--> CLOSED

Call states (:data:`~taskrpc.client.states.CALL_TRANSITIONS`)::

    QUEUED --send--> SENT --ack--> CONFIRMED --(reply)--> done
      ^  ^            |  \\--nack, unsent-->QUEUED         |
      |  +--resend----+-------------------------------------+  (lost; idempotent only)

Invariants, checked by the tests with every interleaving they can build:

1. A call is in at most one place the machine keeps calls: the outbox (keyed by call id)
   or the unconfirmed publishes (keyed by delivery tag). Submitting a call twice raises.
2. A call ends exactly once: a reply, or one :class:`Fail`. After that no event moves it
   and no action names it again.
3. A call is published only while the connection is ``READY`` (never while the broker
   blocks publishing), at most once per connection, and only before its deadline; its
   ``expiration`` is the time left at that publish, in whole milliseconds, at least 1.
4. A call is published again on a later connection only when it provably reached no queue
   (refused with a nack, or its frames never left: :meth:`ClientMachine.unsent`), within
   its ``publish_retry``, or when its task is idempotent, within ``resend``. A call whose
   publish is in doubt (sent, unconfirmed, connection lost) or whose reply queue went
   with the connection fails otherwise with :class:`~taskrpc.ConnectionLost`, whose
   message says whether the request may have run.
5. A call whose deadline passes before it is published fails locally with
   :class:`~taskrpc.TimeoutError` (``started=False``) and is never published. A call
   whose publish to a quorum queue stays unconfirmed past the confirm timeout fails with
   :class:`~taskrpc.NoQuorum` and is not published again (:mod:`.confirms`).
6. An event that the current state does not allow raises :class:`IllegalTransition` at
   once: that is a bug in a driver, never a network fault.
"""

from __future__ import annotations

import logging

from .. import delays
from ..exceptions import BrokerError, ClientClosed, Unroutable
from .confirms import no_quorum
from .publishing import Publishing
from .replies import PendingCall
from .states import (
    BLOCKED,
    CLOSED,
    CONFIRMED,
    QUEUED,
    READY,
    Action,
    IllegalTransition,
    connection_lost,
)

logger = logging.getLogger("taskrpc.client")


class ClientMachine(Publishing):
    """The client's calls and connection state; see the module docstring.

    Parameters:
        router: Where calls wait for replies (the machine adds and fails calls there).
        exchange: The task exchange requests are published to.
        publish_retry: Default bound on publishing a call again after a safe failure.
        resend: Bound on resending an idempotent call once its publish was in doubt.
        confirm_timer: Which publishes fail with ``NoQuorum`` if unconfirmed too long
            (default: none).
    """

    # -- connection events ------------------------------------------------------------

    def connected(self, reply_to: str, now: float, *, confirms: bool = True) -> list[Action]:
        """A new connection consumes replies at ``reply_to``: publish what waits."""
        self._move("connected")
        self.reply_to, self._confirms, self._tag = reply_to, confirms, 0
        self.blocked_reason = ""
        self._declared = set()
        self._confirm_timer.clear()
        return self._flush(now)

    def blocked(self, reason: str) -> None:
        """The broker stopped reading our publishes (``connection.blocked``)."""
        self._move("blocked")
        self.blocked_reason = reason or "the broker is low on a resource"
        logger.warning("the broker blocks publishing (connection.blocked: %s)", reason)

    def unblocked(self, now: float) -> list[Action]:
        """The broker reads publishes again (``connection.unblocked``)."""
        was = self.state
        self._move("unblocked")
        self.blocked_reason = ""
        return self._flush(now) if was == BLOCKED else []

    def connection_lost(self, reason: str, now: float) -> list[Action]:
        """The connection (and with it the reply queue) is gone; decide each call's fate.

        Queued calls wait for the next connection. Calls whose publish is in doubt or whose
        reply queue was lost are resent if their task is idempotent, else they fail.
        """
        self._move("lost")
        self.last_error, self.reply_to, self.blocked_reason = reason, "", ""
        unconfirmed, self._unconfirmed, self._returned = self._unconfirmed, {}, {}
        actions: list[Action] = []
        for call in unconfirmed.values():
            if not call.done:
                actions += self._lost(call, now, in_doubt=True)
        for call in self.router.calls():
            if call.state == CONFIRMED and not call.done:
                actions += self._lost(call, now, in_doubt=False)
        return actions

    def _lost(self, call: PendingCall, now: float, *, in_doubt: bool) -> list[Action]:
        """Resend (idempotent) or fail ``call``, whose publish or reply queue was lost."""
        if call.deadline <= now:
            return [self._fail(call, self.timeout_error(call))]
        if call.resendable and call.request is not None and call.resends < self._resend.max_retries:
            call.resends += 1
            self._step(call, "resend")
            self._queue(call)
            return []
        return [self._fail(call, connection_lost(call, self.last_error, in_doubt=in_doubt))]

    def reset(self, error: BaseException) -> list[Action]:
        """The driver hit a bug and drops its connection: every call fails with ``error``."""
        self._move("reset")
        self.reply_to, self.blocked_reason = "", ""
        self._outbox.clear()
        self._unconfirmed.clear()
        return [self._fail(call, error) for call in self.router.calls() if not call.done]

    def close(self, error: BaseException | None = None) -> list[Action]:
        """The client closes: every call not yet done fails (``ClientClosed``)."""
        self._move("close")
        error = error or ClientClosed("client closed while the call was pending")
        self._outbox.clear()
        self._unconfirmed.clear()
        return [self._fail(call, error) for call in self.router.calls() if not call.done]

    # -- call events ------------------------------------------------------------------

    def submit(self, call: PendingCall, now: float) -> list[Action]:
        """A new call (its ``request`` set): publish it now if possible, else queue it.

        Raises:
            ClientClosed: The client is closed.
            IllegalTransition: This call was submitted before.
        """
        if self.state == CLOSED:
            raise ClientClosed("client is closed")
        if call.state != QUEUED or call.publishes or call.id in self._outbox:
            raise IllegalTransition(f"call {call.id} submitted twice")
        if call.done:  # given up (cancelled) before it reached the machine: never sent
            return []
        self.router.add(call)
        if self.state == READY and not self._outbox:
            return self._send(call, now)
        self._queue(call)
        return []

    def flush(self, now: float) -> list[Action]:
        """Publish what the outbox holds, if the connection allows (after :meth:`unsent`)."""
        return self._flush(now) if self._outbox else []

    def unsent(self, call: PendingCall) -> None:
        """The driver could not write ``call``'s frames (it failed before they left)."""
        if call.done:
            return
        if self._confirms:
            tag = call.tag
            if self._unconfirmed.get(tag) is not call:
                raise IllegalTransition(f"call {call.id} reported unsent but is not unconfirmed")
            del self._unconfirmed[tag]
            self._step(call, "unsent")
        else:  # taken as confirmed when its publish was handed out
            self._step(call, "unsend")
        call.publishes -= 1  # it never left: it does not count
        self._queue(call)

    def declare_failed(self, queue: str, reason: str) -> list[Action]:
        """Declaring ``queue`` (or the delay cascade) failed: fail the calls queued for it.

        The driver first returns the publishes it did not make with :meth:`unsent`.
        """
        error = BrokerError(reason)
        self._declared.discard(queue)
        cascade = queue == delays.PREFIX
        doomed = [
            call
            for call in self._outbox.values()
            if (call.request.due is not None if cascade else call.request.queue == queue)
        ]
        for call in doomed:
            del self._outbox[call.id]
        return [self._fail(call, error) for call in doomed]

    def ack(self, tag: int, multiple: bool = False) -> list[Action]:
        """The broker confirmed publishes up to ``tag``: they reached their queue."""
        actions: list[Action] = []
        for call in self._settle_tags(tag, multiple):
            reason = self._returned.pop(call.id, None)
            if call.done:
                continue
            if reason is not None:
                self._declared.discard(call.request.queue)  # declare it again next time
                message = (
                    f"no queue is bound for {call.task} on {call.request.queue!r} "
                    f"({reason}); was the queue deleted?"
                )
                actions.append(self._fail(call, Unroutable(message)))
                continue
            self._step(call, "ack")
            actions += self._confirmed(call)
        return actions

    def nack(self, tag: int, multiple: bool, now: float) -> list[Action]:
        """The broker refused publishes up to ``tag``: they reached no queue."""
        actions: list[Action] = []
        for call in self._settle_tags(tag, multiple):
            self._returned.pop(call.id, None)
            if call.done:
                continue
            if call.publishes <= self._policy(call).max_retries:
                self._step(call, "nack")
                self._queue(call)
            else:
                actions.append(self._fail(call, BrokerError(f"the broker refused {call.task}")))
        if self.state == READY:
            actions += self._flush(now)
        return actions

    def returned(self, call_id: str, reason: str) -> None:
        """The broker returned a publish (no queue bound); its confirm follows."""
        self._returned[call_id] = reason

    def expire(self, now: float) -> list[Action]:
        """Fail the queued calls whose deadline passed: they will never be published.

        A published call is left waiting past its deadline: its caller stops waiting
        then (with :meth:`timeout_error`), and a late reply, such as the worker's
        "deadline exceeded", still reaches it while its handle is held.

        Also fail the calls whose publish stayed unconfirmed past the confirm timeout
        (:mod:`.confirms`) with ``NoQuorum``, unless the broker blocks the connection.
        """
        outbox = self._outbox
        actions: list[Action] = []
        for call_id in self._deadlines.due(now):
            call = outbox.pop(call_id, None)
            if call is not None and not call.done:
                actions.append(self._fail(call, self.timeout_error(call)))
        timer = self._confirm_timer
        for call in timer.overdue(now, self._unconfirmed, blocked=self.state == BLOCKED):
            actions.append(self._fail(call, no_quorum(call, timer.timeout, now)))
        return actions

    def next_deadline(self) -> float | None:
        """The earliest deadline of a queued call or confirm timeout of a publish (for
        the driver's timer: call :meth:`expire` then)."""
        queued, unconfirmed = self._deadlines.next(), self._confirm_timer.next(self._unconfirmed)
        if unconfirmed is None or (queued is not None and queued <= unconfirmed):
            return queued
        return unconfirmed

    def __repr__(self) -> str:
        return (
            f"<ClientMachine {self.state} outbox={len(self._outbox)} "
            f"unconfirmed={len(self._unconfirmed)} pending={len(self.router)}>"
        )
