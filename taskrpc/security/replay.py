"""Replay protection for signed requests, over the whole signature window.

Every signed request carries a fresh nonce and its signing time (both covered by the
signature). A worker remembers each nonce it accepted, filed by signing second, until
the window has passed for that second: a copy of a request arriving any time within
the window is refused, whatever else arrived meanwhile. Memory grows with the rate of
signed requests (about 100 bytes each, for one window), never with what an attacker
without a key sends, since only requests with a valid signature are remembered.

A hard cap (``capacity``) keeps memory bounded even at extreme rates; reaching it never
opens a hole: the oldest second is forgotten and every request signed at or before it
is refused from then on ("older than the replay memory"), so the window shrinks under
load instead of the protection.

A request the broker marks *redelivered* (its first delivery was never acked: a lost
connection) is let through if this worker has not answered it yet; once it is answered
it is a replay unless the worker can send the same reply again from its reply cache.
"""

from __future__ import annotations

import math
import threading

from ..exceptions import BadSignature

#: Signed requests remembered at most per worker process (about 100 MB at the cap).
DEFAULT_CAPACITY = 1_000_000


class ReplayGuard:
    """The nonces of the signed requests accepted within the window.

    Parameters:
        window: Seconds either side of now a signature is valid.
        capacity: Nonces remembered at most (see the module's docstring).

    Example:
        >>> guard = ReplayGuard(window=60)
        >>> guard.check("n1", signed_at=1000.0, now=1000.5, redelivered=False)
        >>> guard.check("n1", signed_at=1000.0, now=1001.0, redelivered=False)
        Traceback (most recent call last):
        ...
        taskrpc.exceptions.BadSignature: request replayed: its nonce was seen within the window
    """

    def __init__(self, window: float, capacity: int = DEFAULT_CAPACITY) -> None:
        self.window = window
        self.capacity = capacity
        # signing second -> {hash of nonce: answered}; a 64-bit hash keyed per process.
        self._seconds: dict[int, dict[int, bool]] = {}
        self._size = 0
        self._floor = -math.inf
        self._expired_at = -math.inf
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def check(self, nonce: str, *, signed_at: float, now: float, redelivered: bool) -> None:
        """Accept a verified request's nonce once; let a redelivery of an unanswered one
        through.

        Raises:
            BadSignature: Seen before (and not a redelivery of an unanswered request), or
                signed before what the memory still covers.
        """
        key = hash(nonce)
        with self._lock:
            self._expire(now)
            if signed_at <= self._floor:
                raise BadSignature(
                    "request signed too long ago for the replay memory of this worker "
                    "(it is at capacity): refused rather than risk a replay"
                )
            second = self._seconds.setdefault(int(signed_at), {})
            if key in second:
                if not redelivered:
                    raise BadSignature("request replayed: its nonce was seen within the window")
                return  # a redelivery: the caller checks whether it was answered
            second[key] = False
            self._size += 1
            while self._size > self.capacity:
                self._forget(min(self._seconds))

    def mark_answered(self, nonce: str, signed_at: float) -> None:
        """Record that the request was answered: a redelivery of it is a replay now."""
        with self._lock:
            second = self._seconds.get(int(signed_at))
            if second is not None and hash(nonce) in second:
                second[hash(nonce)] = True

    def answered(self, nonce: str, signed_at: float) -> bool:
        """Whether the request with this nonce was answered by this worker."""
        with self._lock:
            return bool(self._seconds.get(int(signed_at), {}).get(hash(nonce)))

    def _expire(self, now: float) -> None:
        if now - self._expired_at < 1.0:
            return
        self._expired_at = now
        oldest = now - self.window - 1
        for second in [s for s in self._seconds if s < oldest]:
            del_size = len(self._seconds.pop(second))
            self._size -= del_size

    def _forget(self, second: int) -> None:
        self._size -= len(self._seconds.pop(second))
        self._floor = max(self._floor, second + 1.0)
