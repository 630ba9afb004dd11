"""The client's I/O thread: a thin driver of the client state machine over one connection.

Everything that changes call or connection state is an event of the
:class:`~taskrpc.client.machine.ClientMachine`, fed under one lock (the I/O lock, which
also guards the connection: py-amqp connections are not thread-safe); the actions it
returns are carried out at once, under the same lock. A caller that finds the lock free
submits and publishes its request itself (no thread hand-off on the way out); otherwise
it hands the call to the I/O thread through a lock-free inbox and wakes it. Waiting
callers read their replies themselves (:mod:`taskrpc.client.leader`); the I/O thread
reads for everyone else, and reads everything when ``eager`` (asyncio's callers never
read). Only the connection's own errors count as a lost connection; any other exception
is a bug, logged with its traceback, and fails the calls with it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from ..exceptions import BrokerError, ClientClosed, TaskRPCError, TimeoutError
from ..policies import RetryPolicy
from ..settings import Settings
from ..transport.nodes import BrokerNodes
from .actions import carry_out
from .leader import Leadership
from .machine import ClientMachine
from .replies import PendingCall, RawReply
from .session import DIRECT_REPLY_TO, REPLY_QUEUE_PREFIX, Session
from .states import Action, Fail

__all__ = ["DIRECT_REPLY_TO", "REPLY_QUEUE_PREFIX", "ReplyListener"]

logger = logging.getLogger("taskrpc.client")

#: Seconds between the I/O thread's looks at an otherwise unwatched socket.
IDLE_CHECK = 1.0

#: Methods (replies, confirms) the I/O thread reads before it publishes what is queued.
DRAIN_LIMIT = 64


class ReplyListener:
    """Owns the client's connection and drives its state machine; see the module docstring.

    If the connection drops, calls that provably never reached a queue are published
    again once reconnected; calls whose publish is in doubt, or whose reply queue went
    with the connection, are sent again only if their task is idempotent (within
    ``resend``) and fail with :class:`~taskrpc.ConnectionLost` otherwise. Reconnection
    backs off as ``connect_retry`` says and never gives up while open.
    """

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

    @property
    def reply_to(self) -> str:
        """Name of the current callback queue (every request's ``reply_to``)."""
        return self.machine.reply_to

    @property
    def last_error(self) -> str:
        """Why the last connection ended or could not be made."""
        return self.machine.last_error

    def start(self) -> None:
        """Start connecting in the background."""
        self._thread.start()

    def wait_ready(self, timeout: float) -> str:
        """Return the callback queue's name once it is consumed.

        Raises:
            BrokerError: No queue within ``timeout`` seconds, or the connection retry policy
                is exhausted (the thread keeps trying in the background).
        """
        deadline = time.monotonic() + timeout
        while not self._ready.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._gave_up.is_set():
                raise BrokerError(f"no connection to the broker: {self.last_error or 'timed out'}")
            self._ready.wait(min(left, 0.05))
        return self.reply_to

    @property
    def connected(self) -> bool:
        """Whether the callback queue is being consumed right now."""
        return self._ready.is_set()

    def submit(self, call: PendingCall) -> None:
        """Submit ``call`` (its ``request`` set): publish it now if the lock is free, else
        hand it to the I/O thread. Never waits for the broker; a queue declaration on the
        way is one round trip.

        Raises:
            ClientClosed: The client is closed.
        """
        if not self._inbox and self.io_lock.acquire(blocking=False):
            try:
                self._feed(self.machine.submit(call, time.monotonic()))
            except self.broken_errors:  # the aborted publish waits in the outbox
                self.break_connection()
            finally:
                self.io_lock.release()
                # Declaring a queue reads the socket: that may have read a leader's reply.
                if self.leader.lock.locked():
                    self.leader.wake()
            return
        self.hand_over(call)

    def hand_over(self, call: PendingCall) -> None:
        """Queue ``call`` for the I/O thread to submit; never blocks (asyncio's way).

        Raises:
            ClientClosed: The client is closed.
        """
        if self.stopping:
            raise ClientClosed("client is closed")
        self._inbox.append(call)
        session = self.session
        if session is not None:
            session.wake()
        elif self.stopping:  # closed meanwhile: make sure the call ends
            self._close_calls()

    def wait(self, call: PendingCall, timeout: float) -> bool:
        """Wait until ``call`` settles or ``timeout`` passes; return whether it settled."""
        return self.leader.wait(call, timeout)

    def timeout_error(self, call: PendingCall) -> TimeoutError:
        """The error of a call that reached its deadline, naming what held it up."""
        return self.machine.timeout_error(call)

    def stop(self) -> None:
        """Stop, fail every waiting call with ``ClientClosed``, close the connection."""
        self.stopping = True
        self._stopped.set()
        session = self.session
        if session is not None:
            session.wake()
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout=5)
        self._close_calls()
        self.leader.wake()

    def _close_calls(self) -> None:
        with self.io_lock:
            actions = self.machine.close()
            actions += self._take_inbox_closed()
            self._feed(actions)

    def _take_inbox_closed(self) -> list[Action]:
        error = ClientClosed("client closed while the call was pending")
        actions: list[Action] = []
        while self._inbox:
            actions.append(Fail(self._inbox.popleft(), error))
        return actions

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
