"""A broker-free world for the client state machine: it carries out the machine's actions
the way a driver does, models what the broker received, and checks the invariants after
every event."""

from __future__ import annotations

import dataclasses
import itertools

from taskrpc.client.base import OutgoingRequest
from taskrpc.client.confirms import ConfirmTimer
from taskrpc.client.machine import ClientMachine
from taskrpc.client.replies import PendingCall, RawReply, ReplyRouter
from taskrpc.client.states import (
    CONFIRMED,
    QUEUED,
    READY,
    SENT,
    Action,
    Declare,
    Fail,
    Publish,
    Sent,
)
from taskrpc.exceptions import TimeoutError
from taskrpc.policies import RetryPolicy

PUBLISH_RETRY = RetryPolicy(max_retries=2)
RESEND = RetryPolicy(max_retries=2)
_ids = itertools.count()


@dataclasses.dataclass
class Publication:
    """One publish as the world saw it."""

    call: PendingCall
    connection: int
    expiration: int
    #: Whether the broker may have it (written, and not refused or aborted).
    reached: bool = True


class CountedCall(PendingCall):
    """A call that counts how often something tried to settle it."""

    __slots__ = ("settles",)

    def _settle(self, reply, error):
        self.settles[self.id] = self.settles.get(self.id, 0) + 1
        return super()._settle(reply, error)


class World:
    """The machine, its router, a clock, and a broker that does what the test says."""

    def __init__(self, *, confirms: bool = True, confirm_timer: ConfirmTimer | None = None):
        self.router = ReplyRouter()
        self.machine = ClientMachine(
            self.router, publish_retry=PUBLISH_RETRY, resend=RESEND, confirm_timer=confirm_timer
        )
        self.now = 1000.0
        self.connection = 0
        self.confirms = confirms
        self.sent: list[Publication] = []
        self.settles: dict[str, int] = {}
        self.calls: list[PendingCall] = []
        self.inbox: list[PendingCall] = []  # handed over, not yet submitted (asyncio's way)
        #: Make the next publish's write fail (the connection breaks under it).
        self.break_next_write = False

    # -- the caller's side ----------------------------------------------------------

    def new_call(
        self,
        *,
        timeout: float = 10.0,
        idempotent: bool = False,
        queue: str = "q",
        fire: bool = False,
    ):
        call_id = f"c{next(_ids)}"
        request = OutgoingRequest(
            id=call_id,
            task="t",
            queue=queue,
            body=b"{}",
            content_type="application/json",
            content_encoding="binary",
            properties={"correlation_id": call_id, "message_id": call_id, "delivery_mode": 2},
            base_headers={"taskrpc-protocol": 1, "taskrpc-task": "t"},
            deadline=self.now + timeout,
            fire=fire,
        )
        call = CountedCall(call_id, "t", request.deadline)
        call.settles = self.settles
        call.request, call.resendable = request, idempotent
        self.calls.append(call)
        return call

    def submit(self, call: PendingCall) -> None:
        self.run(self.machine.submit(call, self.now))

    def hand_over(self, call: PendingCall) -> None:
        self.inbox.append(call)

    def drain_inbox(self) -> None:
        """What the I/O thread does each turn: submit what was handed over, then flush."""
        while self.inbox:
            self.submit(self.inbox.pop(0))
        self.run(self.machine.flush(self.now))

    def cancel(self, call: PendingCall) -> None:
        """The caller gives up (asyncio's cancel): the call ends now, wherever it is."""
        self.router.discard(call.id)
        if not call.done:
            call._settle(None, RuntimeError("cancelled"))

    # -- the connection -------------------------------------------------------------

    def connect(self) -> None:
        self.connection += 1
        self.run(
            self.machine.connected(f"reply-{self.connection}", self.now, confirms=self.confirms)
        )

    def lose(self) -> None:
        self.run(self.machine.connection_lost("link cut", self.now))

    def ack(self, tag: int | None = None, multiple: bool = False) -> None:
        self.run(self.machine.ack(self._tag(tag), multiple))

    def nack(self, tag: int | None = None) -> None:
        tag = self._tag(tag)
        for sent in self.sent:
            if sent.connection == self.connection and sent.call.tag == tag:
                sent.reached = False
        self.run(self.machine.nack(tag, False, self.now))

    def reply(self, call: PendingCall) -> bool:
        """The worker answers, if the broker got the request on this connection."""
        if call.request is not None and call.request.fire:
            return False  # fire-and-forget: no reply_to, no reply
        if not any(
            s.call is call and s.reached and s.connection == self.connection for s in self.sent
        ):
            return False
        self.router.deliver(call.id, RawReply(b'{"ok": true, "result": 1}', "application/json"))
        return True

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.run(self.machine.expire(self.now))

    def unconfirmed_tags(self) -> list[int]:
        return sorted(self.machine._unconfirmed)

    def _tag(self, tag: int | None) -> int:
        return self.unconfirmed_tags()[0] if tag is None else tag

    # -- the driver -----------------------------------------------------------------

    def run(self, actions: list[Action]) -> None:
        for index, action in enumerate(actions):
            if type(action) is Fail:
                assert not action.call.done, "a Fail for a call already done"
                action.call._settle(None, action.error)
            elif type(action) is Sent:
                assert action.call.request is None or not self.confirms
                action.call._settle(None, None)
            elif type(action) is Publish:
                call = action.call
                assert not call.done, "a Publish for a call already done"
                assert self.machine.state == READY, "published while not READY"
                if self.break_next_write:
                    self.break_next_write = False
                    self.abort(actions[index:])
                    self.lose()
                    return
                expiration = int(action.properties["expiration"])
                assert 1 <= expiration <= max(1, round((call.deadline - self.now) * 1000))
                if call.request.fire:
                    assert "reply_to" not in action.properties
                else:
                    assert action.properties["reply_to"] == f"reply-{self.connection}"
                self.sent.append(Publication(call, self.connection, expiration))
            else:
                assert type(action) is Declare
            self.check()

    def abort(self, actions: list[Action]) -> None:
        for action in actions:
            if type(action) is Publish:
                self.machine.unsent(action.call)
            elif type(action) is Fail:
                action.call._settle(None, action.error)

    # -- invariants -----------------------------------------------------------------

    def check(self) -> None:
        machine = self.machine
        outbox, unconfirmed = machine._outbox, list(machine._unconfirmed.values())
        assert len({id(c) for c in unconfirmed}) == len(unconfirmed), "published twice at once"
        assert not set(outbox) & {c.id for c in unconfirmed if not c.done}, "in two places"
        for call in outbox.values():
            assert call.done or call.state == QUEUED
        for call in unconfirmed:
            assert call.done or call.state == SENT
        for count in self.settles.values():
            assert count == 1, "a call settled twice"

    def reached(self, call: PendingCall) -> int:
        """How many of its publishes the broker may have taken."""
        return sum(s.reached for s in self.sent if s.call is call)

    def finish(self) -> None:
        """Let everything end: reconnect, confirm, then pass every deadline."""
        if self.machine.state != READY and self.machine.state != "CLOSED":
            if self.machine.state == "BLOCKED":
                self.run(self.machine.unblocked(self.now))
            else:
                self.connect()
        self.drain_inbox()
        while self.unconfirmed_tags():
            self.ack()
        self.advance(3600)
        for call in self.calls:
            # Published calls past their deadline wait for a late reply; their callers
            # stopped waiting at the deadline, with the machine's timeout error.
            if not call.done:
                assert call.state in (SENT, CONFIRMED), f"{call.id} hangs in {call.state}"
                assert call.id not in self.machine._outbox
                assert isinstance(self.machine.timeout_error(call), TimeoutError)
                continue
            assert self.settles.get(call.id) == 1, (
                f"{call.id} ended {self.settles.get(call.id)} times"
            )
            limit = 1 + (RESEND.max_retries if call.resendable else 0)
            assert self.reached(call) <= limit, f"{call.id} reached the broker too often"
