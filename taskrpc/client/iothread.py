"""The client's I/O thread: connecting, its loop, and the session events it feeds.

:class:`IOThread` is the base of :class:`~taskrpc.client.listener.ReplyListener`, whose
module docstring describes the driver as a whole. It holds the driver's state and runs
the thread: it connects (backing off as ``connect_retry`` says), then, pass after pass,
waits on the connection, reads what came, submits what callers handed over, publishes
what waits and expires what is due. What the session reads (a reply, a confirm, a
return, ``connection.blocked``) goes to the state machine as it is read, and the
machine's actions are carried out at once, all under the I/O lock.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from ..exceptions import BrokerError, TaskRPCError
from ..policies import RetryPolicy
from ..settings import Settings
from ..transport.nodes import BrokerNodes
from .actions import carry_out
from .leader import Leadership
from .machine import ClientMachine
from .replies import PendingCall, RawReply
from .session import Session
from .states import Action, Fail

logger = logging.getLogger("taskrpc.client")

#: Seconds between the I/O thread's looks at an otherwise unwatched socket.
IDLE_CHECK = 1.0

#: Methods (replies, confirms) the I/O thread reads before it publishes what is queued.
DRAIN_LIMIT = 64


class IOThread:
    """The state and I/O thread of :class:`~taskrpc.client.listener.ReplyListener`."""

    def __init__(
        self,
        settings: Settings,
        machine: ClientMachine,
        *,
        connect_retry: RetryPolicy,
        direct: bool = False,
        eager: bool = False,
    ) -> None:
        self._settings = settings
        self._nodes = BrokerNodes(settings.broker_url, settings.broker_failover_strategy)
        self.machine = machine
        self._connect_retry = connect_retry
        self._direct = direct
        self._eager = eager
        self._inbox: collections.deque[PendingCall] = collections.deque()
        #: Guards the machine and the connection.
        self.io_lock = threading.Lock()
        self.leader = Leadership(self)
        #: The current connection (``None`` while not connected).
        self.session: Session | None = None
        # The current session's connection and channel errors; set with the session.
        self.broken_errors: tuple[type[BaseException], ...] = (OSError,)
        self._broken = False
        self._ready = threading.Event()
        self._gave_up = threading.Event()  # set while retries are exhausted; calls fail fast
        self.stopping = False
        self._stopped = threading.Event()  # wakes the reconnection backoff at once
        self._thread = threading.Thread(target=self._run, name="taskrpc-client", daemon=True)

    def break_connection(self) -> None:
        """The connection or its channel broke under a caller: have the I/O thread see it."""
        self._broken = True
        session = self.session
        if session is not None:
            session.wake()

    # -- the I/O thread -------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self.stopping:
            try:
                session = Session(self._settings, self, nodes=self._nodes, direct=self._direct)
            except Exception as exc:  # could not connect (BrokerError), or a bug: say so
                if not isinstance(exc, BrokerError):
                    logger.exception("taskrpc client failed to set up a connection (a bug)")
                attempt += 1
                with self.io_lock:
                    reason = str(exc) if isinstance(exc, BrokerError) else repr(exc)
                    self._feed(self.machine.connection_lost(reason, time.monotonic()))
                if attempt > self._connect_retry.max_retries:
                    self._gave_up.set()
                self._stopped.wait(self._connect_retry.delay(attempt))
                continue
            attempt = 0
            try:
                self._serve(session)
            finally:
                with self.io_lock:
                    self.session = None
                session.close()
            if not self.stopping:
                self._stopped.wait(self._connect_retry.delay(1))

    def _serve(self, session: Session) -> None:
        broken = (*session.connection_errors, *session.channel_errors)
        try:
            with self.io_lock:
                self.session, self.broken_errors, self._broken = session, broken, False
                now = time.monotonic()
                self._feed(self.machine.connected(session.reply_to, now, confirms=session.confirms))
            self._gave_up.clear()
            self._ready.set()
            while not self.stopping:
                self._turn(session)
        except broken as exc:
            self._lost(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug: say so loudly, fail the calls with it
            logger.exception("taskrpc client I/O failed; failing its calls")
            error = TaskRPCError(f"client I/O failed (a bug): {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            self._ready.clear()
            with self.io_lock:
                self._feed(self.machine.reset(error))

    def _lost(self, reason: str) -> None:
        self._ready.clear()
        if self.stopping:
            return
        self._nodes.lost()
        with self.io_lock:
            actions = self.machine.connection_lost(reason, time.monotonic())
            self._feed(actions)
        self.leader.wake()  # it may be waiting on the dead socket
        failed = sum(type(action) is Fail for action in actions)
        logger.warning("client connection lost (%s); %d calls failed", reason, failed)

    def _turn(self, session: Session) -> None:
        """One pass of the I/O loop: wait, read what came, publish what is queued."""
        leader = self.leader
        with self.io_lock:
            session.heartbeat_check()  # raises a connection error after two silent beats
        # Read replies only for those who need it: an eager (asyncio) client, or callers
        # waiting while nobody leads. Otherwise the next caller to wait reads them itself,
        # and a sync caller's round trip involves no other thread.
        watch = (self._eager or leader.followers > 0) and not leader.lock.locked()
        idle = 0.0 if self._inbox else min(1.0 if watch else IDLE_CHECK, session.heartbeat_due())
        due = self.machine.next_deadline()
        if due is not None:
            idle = max(0.0, min(idle, due - time.monotonic()))
        readable = session.poll(idle, watch_input=watch)
        if not watch and not leader.lock.locked():
            # Now and then, and after a wake-up, read what nobody waits for: confirms,
            # stray replies, a closed connection.
            readable = session.poll(0)
        with self.io_lock:
            if self._broken:
                raise ConnectionError("the channel broke while a caller used it")
            busy = readable or bool(self._inbox)
            if readable:
                session.drain(limit=DRAIN_LIMIT)  # then publish what waits meanwhile
            busy = self._events_due() or busy  # a call failed on time may be the leader's
        if busy and leader.lock.locked():  # we may have taken the leader's reply
            leader.wake()

    def _events_due(self) -> bool:  # with the lock held
        """Submit what was handed over, publish what waits, expire what is due: whether
        calls expired."""
        machine, now = self.machine, time.monotonic()
        inbox = self._inbox
        while inbox:
            self._feed(machine.submit(inbox.popleft(), now))
        self._feed(machine.flush(now))
        due = machine.next_deadline()
        if due is not None and due <= now:
            expired = machine.expire(now)
            self._feed(expired)
            return bool(expired)
        return False

    def _feed(self, actions: list[Action]) -> None:  # with the lock held
        """Carry out the machine's actions, in order (see :func:`.actions.carry_out`)."""
        if actions:
            carry_out(self.machine, self.session, actions)

    # -- session events (called while reading, with the lock held) -------------------

    def on_reply(self, reply: RawReply) -> None:
        self.machine.router.deliver(reply.correlation_id, reply)

    def on_ack(self, tag: int, multiple: bool) -> None:
        self._feed(self.machine.ack(tag, multiple))

    def on_nack(self, tag: int, multiple: bool) -> None:
        self._feed(self.machine.nack(tag, multiple, time.monotonic()))

    def on_return(self, call_id: str, reason: str) -> None:
        self.machine.returned(call_id, reason)

    def on_bad_reply(self, reason: str) -> None:
        self.machine.router.drop_undecodable(reason)

    def on_blocked(self, reason: str) -> None:
        self.machine.blocked(reason)

    def on_unblocked(self) -> None:
        self._feed(self.machine.unblocked(time.monotonic()))
