"""Waiting callers read the socket themselves: one "leader" at a time.

A sync round trip from one thread then wakes no other thread: the caller that waits for
its reply reads the connection itself, under the client's I/O lock, until its own call
settles; replies for other calls are routed as they come. Other waiting callers
("followers") wait on their call's event while the leader, or else the I/O thread, reads
for them. When the I/O thread reads something itself, it writes a byte to the leader's
pipe, since what it read may have been the leader's reply.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import TYPE_CHECKING

from .replies import PendingCall

if TYPE_CHECKING:
    from .iothread import IOThread
    from .session import Session


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:  # empty (non-blocking) or closed
        pass


class Leadership:
    """The leader lock, its wake-up pipe, and the count of followers."""

    def __init__(self, listener: IOThread) -> None:
        self._listener = listener
        self.lock = threading.Lock()  # held by the one caller reading replies itself
        self.followers = 0  # callers waiting on their event instead of reading
        self._followers_lock = threading.Lock()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    def wait(self, call: PendingCall, timeout: float) -> bool:
        """Wait until ``call`` settles or ``timeout`` passes; return whether it settled.

        With ``timeout=0`` this reads what has already arrived, without blocking.
        """
        session = self._listener.session
        if call.done or session is None or not session.confirms:
            return call.wait(timeout)
        if not self.lock.acquire(blocking=False):
            return self._follow(call, timeout)
        deadline = time.monotonic() + timeout
        try:
            self._lead(call, session, deadline)
        except self._listener.broken_errors:  # have the I/O thread reconnect
            self._listener.break_connection()
        finally:
            self.lock.release()
            if self.followers:
                session.wake()  # someone still waits: the I/O thread reads for them now
        left = deadline - time.monotonic()
        if call.done or left <= 0:
            return call.done
        return self._follow(call, left)  # stopped or reconnected while leading

    def _lead(self, call: PendingCall, session: Session, deadline: float) -> None:
        listener = self._listener
        sock, buffered = session.fileno(), session.buffered

        def call_done() -> bool:
            return call.done

        while not call.done and not listener.stopping:
            left = max(0.0, deadline - time.monotonic())
            if buffered():
                left = 0.0  # frames already read wait to be parsed
            readable = select.select([sock, self._r], [], [], left)[0]
            if buffered() and sock not in readable:
                readable.append(sock)
            if self._r in readable:
                _drain_pipe(self._r)  # the I/O thread read something: look
            if sock in readable:
                with listener.io_lock:
                    if listener.session is not session:
                        return  # reconnected meanwhile: the I/O thread takes over
                    # Only until our reply is in: the caller may have more to publish.
                    session.drain(until=call_done)
            elif left <= 0:
                return

    def _follow(self, call: PendingCall, timeout: float) -> bool:
        with self._followers_lock:
            self.followers += 1
        try:
            session = self._listener.session
            if session is not None and not self.lock.locked():
                session.wake()  # nobody leads: have the I/O thread read
            return call.wait(timeout)
        finally:
            with self._followers_lock:
                self.followers -= 1

    def wake(self) -> None:
        """Make the leader look at its call again (the I/O thread may have read its reply)."""
        try:
            os.write(self._w, b"\0")
        except OSError:  # full (a wake-up is pending) or closed
            pass

    def __del__(self) -> None:
        # Closed only when nothing can write to it any more (see EventPump.close).
        for fd in (getattr(self, "_r", -1), getattr(self, "_w", -1)):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
