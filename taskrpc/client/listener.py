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

:class:`ReplyListener` is what the clients use: submit, hand over, wait, stop. The I/O
thread itself (connecting, its loop, the session's events) is its base,
:class:`~taskrpc.client.iothread.IOThread`.
"""

from __future__ import annotations

import threading
import time

from ..exceptions import BrokerError, ClientClosed, TimeoutError
from .iothread import IOThread
from .replies import PendingCall
from .session import DIRECT_REPLY_TO, REPLY_QUEUE_PREFIX
from .states import Action, Fail

__all__ = ["DIRECT_REPLY_TO", "REPLY_QUEUE_PREFIX", "ReplyListener"]


class ReplyListener(IOThread):
    """Owns the client's connection and drives its state machine; see the module docstring.

    If the connection drops, calls that provably never reached a queue are published
    again once reconnected; calls whose publish is in doubt, or whose reply queue went
    with the connection, are sent again only if their task is idempotent (within
    ``resend``) and fail with :class:`~taskrpc.ConnectionLost` otherwise. Reconnection
    backs off as ``connect_retry`` says and never gives up while open.
    """

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
