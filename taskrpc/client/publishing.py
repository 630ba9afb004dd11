"""The client state machine's calls, and the step that publishes one.

:class:`Publishing` is the base of :class:`~taskrpc.client.machine.ClientMachine`. It
holds the state the machine's events work on (the connection's state, the outbox of
queued calls, the publishes awaiting their confirm) and the steps those events share: a
call moved along its transitions, queued, published, confirmed or failed. Publishing
keeps invariant 3 of :mod:`taskrpc.client.machine`, whose docstring states them all; the
events are there.
"""

from __future__ import annotations

from .. import delays
from ..exceptions import TimeoutError
from ..policies import RetryPolicy
from .confirms import ConfirmTimer
from .replies import PendingCall, ReplyRouter
from .states import (
    CALL_TRANSITIONS,
    CONNECTING,
    CONNECTION_TRANSITIONS,
    READY,
    Action,
    Deadlines,
    Declare,
    Fail,
    IllegalTransition,
    Publish,
    Sent,
    timeout_error,
)


class Publishing:
    """The state and shared steps of :class:`~taskrpc.client.machine.ClientMachine`
    (whose docstring lists the parameters)."""

    def __init__(
        self,
        router: ReplyRouter,
        *,
        exchange: str = "taskrpc",
        publish_retry: RetryPolicy,
        resend: RetryPolicy,
        confirm_timer: ConfirmTimer | None = None,
    ) -> None:
        self.router = router
        self._exchange = exchange
        self.state = CONNECTING
        #: The reply queue of the current connection ("" while not connected).
        self.reply_to = ""
        #: Why the broker blocks publishing (``connection.blocked``), while it does.
        self.blocked_reason = ""
        #: Why the last connection ended or could not be made.
        self.last_error = ""
        self._publish_retry = publish_retry
        self._resend = resend
        self._outbox: dict[str, PendingCall] = {}
        self._unconfirmed: dict[int, PendingCall] = {}
        self._returned: dict[str, str] = {}
        self._declared: set[str] = set()
        self._tag = 0
        self._confirms = True
        self._deadlines = Deadlines()  # of queued calls
        self._confirm_timer = ConfirmTimer() if confirm_timer is None else confirm_timer

    def _move(self, event: str) -> None:
        new = CONNECTION_TRANSITIONS.get((self.state, event))
        if new is None:
            raise IllegalTransition(f"connection event {event!r} in state {self.state}")
        self.state = new

    def timeout_error(self, call: PendingCall) -> TimeoutError:
        """The error of ``call`` reaching its deadline, saying what held it up."""
        return timeout_error(call, self.state, self.blocked_reason, self.last_error)

    def _step(self, call: PendingCall, event: str) -> None:
        new = CALL_TRANSITIONS.get((call.state, event))
        if new is None or call.done:
            done = " (done)" if call.done else ""
            raise IllegalTransition(f"call event {event!r} in state {call.state}{done}")
        call.state = new

    def _queue(self, call: PendingCall) -> None:
        self._outbox[call.id] = call
        self._deadlines.add(call, self._outbox)

    def _flush(self, now: float) -> list[Action]:
        if self.state != READY:
            return []
        outbox, self._outbox = self._outbox, {}
        actions: list[Action] = []
        for call in outbox.values():
            if not call.done:
                actions += self._send(call, now)
        return actions

    def _send(self, call: PendingCall, now: float) -> list[Action]:
        left = call.deadline - now
        if left <= 0:
            return [self._fail(call, self.timeout_error(call))]
        request = call.request
        actions: list[Action] = []
        declared = self._declared
        if request.queue not in declared:
            declared.add(request.queue)
            actions.append(Declare(request.queue))
        exchange, routing_key = self._exchange, request.queue
        expiration = max(1, int(left * 1000)) if request.expires else None
        if request.due is not None:  # delayed: through the cascade, never expiring there
            exchange, routing_key = request.route(self._exchange, now)
            expiration = None
            if exchange.startswith(delays.PREFIX) and delays.PREFIX not in declared:
                declared.add(delays.PREFIX)
                actions.append(Declare(delays.PREFIX))
        self._step(call, "send")
        call.publishes += 1
        reply_to = "" if request.fire else self.reply_to
        properties = request.amqp_properties(reply_to, expiration)
        if self._confirms:
            self._tag += 1
            call.tag = self._tag
            self._unconfirmed[self._tag] = call
            if exchange == self._exchange:  # straight to its queue, not the delay cascade
                self._confirm_timer.arm(self._tag, request.queue, now, call.deadline)
            actions.append(Publish(call, properties, exchange, routing_key))
            return actions
        # No confirms (in-process): as good as confirmed once written. The request is
        # kept, in case the driver reports the write failed (:meth:`unsent`).
        actions.append(Publish(call, properties, exchange, routing_key))
        self._step(call, "ack")
        call.confirmed = True
        if request.fire:
            self.router.discard(call.id)
            actions.append(Sent(call))
        return actions

    def _confirmed(self, call: PendingCall) -> list[Action]:
        call.confirmed = True
        if call.request.fire:  # no reply will come: the call is done
            self.router.discard(call.id)
            call.request = None
            return [Sent(call)]
        if not call.resendable:
            call.request = None  # nothing will send it again: let the body go
        return []

    def _fail(self, call: PendingCall, error: BaseException) -> Fail:
        self.router.discard(call.id)
        call.request = None
        return Fail(call, error)

    def _settle_tags(self, tag: int, multiple: bool) -> list[PendingCall]:
        if not multiple:
            call = self._unconfirmed.pop(tag, None)
            return [] if call is None else [call]
        tags = [each for each in self._unconfirmed if each <= tag]
        return [self._unconfirmed.pop(each) for each in tags]

    def _policy(self, call: PendingCall) -> RetryPolicy:
        return call.publish_retry or self._publish_retry
