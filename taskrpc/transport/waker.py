"""The wake-up pipe and the select that both transports share.

:meth:`~taskrpc.transport.base.Transport.wake` is the one transport method any thread (or a
signal handler) may call: it writes a byte to a pipe that :meth:`Waker.poll` selects on
beside the transport's own descriptor, so a thread waiting for input returns at once.
"""

from __future__ import annotations

import math
import os
import select
from collections.abc import Callable


class Waker:
    """The wake-up pipe and the select shared by both transports.

    Subclasses provide :meth:`fileno`, :meth:`buffered` and :meth:`drain`.
    """

    def __init__(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._woken = False
        self._closed = False

    def fileno(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def buffered(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def drain(self, *, until: Callable[[], bool] | None = None, limit: int = 0) -> None:
        raise NotImplementedError  # pragma: no cover - overridden

    def heartbeat_check(self) -> None:
        """No heartbeats by default."""

    def heartbeat_due(self) -> float:
        """``inf``: no heartbeats by default."""
        return math.inf

    def wake(self) -> None:
        """See :meth:`~taskrpc.transport.base.Transport.wake`."""
        if self._woken or self._closed:
            return  # a byte is already on its way (cleared before anything is consumed)
        self._woken = True
        try:
            os.write(self._wake_w, b"\0")
        except OSError:  # full (already woken) or closed
            pass

    def poll(self, timeout: float, *, watch_input: bool = True) -> bool:
        """See :meth:`~taskrpc.transport.base.Transport.poll`."""
        fd = self.fileno()
        if watch_input and self.buffered():
            timeout = 0  # input is waiting already: just look for a wake-up
        watched = [fd, self._wake_r] if watch_input else [self._wake_r]
        readable, _, _ = select.select(watched, [], [], 0 if self._woken else max(0.0, timeout))
        if self._wake_r in readable or self._woken:
            self._clear_wake()
        return watch_input and (fd in readable or self.buffered())

    def wait(self, timeout: float) -> None:
        """See :meth:`~taskrpc.transport.base.Transport.wait`."""
        self.heartbeat_check()
        if self.poll(min(timeout, self.heartbeat_due())):
            self.drain()

    def _clear_wake(self) -> None:
        self._woken = False
        try:
            while os.read(self._wake_r, 4096):
                pass
        except OSError:  # empty (non-blocking) or closed
            pass

    def _stop_waking(self) -> None:
        """Later :meth:`wake` calls do nothing. The pipe is closed only when this object is
        garbage: another thread may still hold a callback that wakes it, and writing to a
        closed descriptor number could hit whatever reused it."""
        self._closed = True

    def __del__(self) -> None:
        for fd in (getattr(self, "_wake_r", -1), getattr(self, "_wake_w", -1)):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
