"""Writes kept back and sent together: one ``send`` and one broker wake-up for many frames.

A worker that answers several requests in one pass of its loop would otherwise make a
system call per reply and per ack, and wake RabbitMQ's reader as often; on a busy
two-core machine those wake-ups, not the bytes, were most of what it cost. Inside
:meth:`WriteBatch.batch` frames are appended to a list and written as one block when the
block ends, when :meth:`WriteBatch.flush` is called, or as soon as what is held grows past
:data:`MAX_HELD_BYTES` or :data:`MAX_HELD_WRITES`, or has waited :data:`MAX_HOLD` seconds.
Frames keep their order; anything written outside a batch goes out at once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

#: Held bytes that are written at once (about the socket's send buffer).
MAX_HELD_BYTES = 64 * 1024
#: Held writes (a publish or an ack each) that are written at once.
MAX_HELD_WRITES = 64
#: Seconds the oldest held write may wait for the next one.
MAX_HOLD = 0.002


class WriteBatch:
    """Holds frames for ``send`` while a batch is open; see the module docstring."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send
        self._held: list[bytes] | None = None  # None: no batch open, writes go straight out
        self._size = 0
        self._since = 0.0

    def write(self, frames: bytes) -> None:
        """Send ``frames`` now, or hold them if a batch is open."""
        held = self._held
        if held is None:
            self._send(frames)
            return
        if not held:
            self._since = time.monotonic()
        held.append(frames)
        self._size += len(frames)
        if (
            self._size >= MAX_HELD_BYTES
            or len(held) >= MAX_HELD_WRITES
            or time.monotonic() - self._since >= MAX_HOLD
        ):
            self.flush()

    def flush(self) -> None:
        """Send what is held (in one write), keeping the batch open."""
        held = self._held
        if held:
            self._held, self._size = [], 0
            self._send(held[0] if len(held) == 1 else b"".join(held))

    @property
    def holding(self) -> bool:
        """Whether frames wait to be sent."""
        return bool(self._held)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Hold writes within the block; send them when it ends (even if it raised:
        what was held was complete). A batch inside a batch is part of it."""
        if self._held is not None:
            yield
            return
        self._held, self._size = [], 0
        try:
            yield
        finally:
            try:
                self.flush()
            finally:
                self._held = None  # closed even if the send failed
