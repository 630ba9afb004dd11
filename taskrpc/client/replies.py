"""Matching replies to calls by correlation id, with duplicate suppression.

A reply settles its call only once it passed the router's ``check`` (the client's:
signature verified, envelope decoded); a reply that fails it is dropped and counted, and
the call keeps waiting for the genuine one. The bookkeeping is bounded: pending calls are
held weakly (a call whose handle was dropped costs nothing), and the memory of answered
ids is a fixed-size window.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from ..exceptions import TaskRPCError

logger = logging.getLogger("taskrpc.client")


class RawReply(NamedTuple):
    """A reply as received, not yet decoded (decoding happens in the caller's thread)."""

    body: bytes
    content_type: str | None
    content_encoding: str | None = None
    headers: Mapping[str, Any] | None = None
    correlation_id: str | None = None
    #: The queue it was delivered to (the ``reply_to`` the request named).
    routing_key: str | None = None


class CheckedReply(NamedTuple):
    """A reply that passed its check: the raw reply's fields and its decoded envelope."""

    body: bytes
    content_type: str | None
    content_encoding: str | None
    headers: Mapping[str, Any] | None
    correlation_id: str | None
    routing_key: str | None
    #: The decoded reply envelope (a :class:`~taskrpc.messages.ReplyBody`).
    decoded: Any


class RejectedReply(TaskRPCError):
    """A reply that failed verification or decoding: dropped, and its call keeps waiting."""


#: Turns a raw reply into what settles its call; raises :class:`RejectedReply` to drop it.
ReplyCheck = Callable[[RawReply], Any]

#: Guards settling a call against a thread that starts blocking on it (brief, uncontended).
_SETTLE_LOCK = threading.Lock()


class PendingCall:
    """One call waiting for its reply; settled exactly once."""

    __slots__ = (
        "id",
        "task",
        "deadline",
        "request",
        "resendable",
        "resends",
        "publishes",
        "confirmed",
        "publish_retry",
        "state",
        "tag",
        "rejected",
        "_done",
        "_event",
        "_reply",
        "_error",
        "_callbacks",
        "__weakref__",
    )

    def __init__(self, call_id: str, task: str, deadline: float) -> None:
        self.id = call_id
        self.task = task
        self.deadline = deadline
        #: The encoded request, kept while the client may still need to send it (again).
        self.request: Any = None
        #: Whether the client may resend the call if its reply queue is lost.
        self.resendable = False
        #: How many times the client sent it again after it was confirmed (idempotent only).
        self.resends = 0
        #: How many times it was published, and whether the broker confirmed it.
        self.publishes = 0
        self.confirmed = False
        #: This call's own policy for publishing again, if it has one.
        self.publish_retry: Any = None
        #: Where the client's state machine has it (see :mod:`taskrpc.client.machine`).
        self.state = "QUEUED"
        #: Delivery tag of its latest publish (confirms are matched by it).
        self.tag = 0
        #: Why replies to it were dropped (named in its timeout error), if any were.
        self.rejected = ""
        self._done = False
        # Made only for a thread that blocks on this call: most calls are read by the
        # thread that waits for them, and an Event costs a Condition and two locks.
        self._event: threading.Event | None = None
        self._reply: RawReply | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[PendingCall], None]] | None = None

    @property
    def done(self) -> bool:
        """Whether a reply (or a failure) has arrived."""
        return self._done

    def wait(self, timeout: float | None) -> bool:
        """Block until settled or ``timeout`` seconds pass; return whether it is settled."""
        if self._done:
            return True
        with _SETTLE_LOCK:
            if self._done:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)

    def outcome(self) -> tuple[Any, BaseException | None]:
        """``(checked reply, None)`` or ``(None, local error)``."""
        return self._reply, self._error

    def add_done_callback(self, callback: Callable[[PendingCall], None]) -> None:
        """Call ``callback(self)`` once settled (at once if it already is), from any thread."""
        with _SETTLE_LOCK:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback(self)

    def _settle(self, reply: Any, error: BaseException | None) -> bool:
        """Settle with a reply or an error; ``False`` (and no change) if already settled."""
        with _SETTLE_LOCK:
            if self._done:
                return False
            self._reply, self._error = reply, error
            self._done = True
            event, callbacks, self._callbacks = self._event, self._callbacks, None
        if event is not None:
            event.set()
        for callback in callbacks or ():
            try:
                callback(self)
            except Exception:  # a callback must not break reply dispatch
                logger.exception("reply callback failed")
        return True


@dataclasses.dataclass
class ReplyStats:
    """Counters of replies that reached no caller."""

    #: Replies whose correlation id matched no call of this client (or an abandoned one).
    unknown: int = 0
    #: Second and later replies for a call already answered (a request that ran twice).
    duplicate: int = 0
    #: Replies to a pending call that failed verification or decoding (forged, garbled).
    rejected: int = 0
    #: Messages in the reply queue the transport could not decode (or over the size
    #: limit); dropped, and no call fails for them.
    undecodable: int = 0


class ReplyRouter:
    """Routes replies to pending calls; thread-safe."""

    def __init__(self, duplicate_window: int = 10_000, check: ReplyCheck | None = None) -> None:
        self._check = check
        self._pending: weakref.WeakValueDictionary[str, PendingCall] = weakref.WeakValueDictionary()
        self._answered: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._window = duplicate_window
        self._lock = threading.Lock()
        self.stats = ReplyStats()
        #: Told the kind ("unknown", "duplicate" or "rejected") of each reply dropped.
        self.on_drop: Callable[[str], None] | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, call: PendingCall) -> None:
        """Start tracking ``call``."""
        with self._lock:
            self._pending[call.id] = call

    def discard(self, call_id: str) -> None:
        """Stop tracking a call (its publish failed); a reply would count as unknown."""
        with self._lock:
            self._pending.pop(call_id, None)

    def get(self, call_id: str) -> PendingCall | None:
        """The pending call of that id, if it still waits."""
        with self._lock:
            return self._pending.get(call_id)

    def calls(self) -> Iterator[PendingCall]:
        """The calls waiting for a reply (a snapshot)."""
        with self._lock:
            calls = list(self._pending.values())
        return iter(calls)

    def deliver(self, correlation_id: str | None, reply: RawReply) -> bool:
        """Hand a reply to its call once checked.

        Returns ``False`` for unknown, duplicate and rejected replies (counted in
        :attr:`stats`); a rejected reply leaves its call waiting.
        """
        checked: Any = reply
        if self._check is not None and correlation_id:
            with self._lock:
                waiting = self._pending.get(correlation_id)
            if waiting is not None:
                try:
                    checked = self._check(reply)
                except RejectedReply as exc:
                    self._reject(waiting, exc)
                    return False
        with self._lock:
            call = self._pending.pop(correlation_id, None) if correlation_id else None
            if call is None:
                if correlation_id in self._answered:
                    self.stats.duplicate += 1
                    kind = "duplicate"
                else:
                    self.stats.unknown += 1
                    kind = "unknown"
            else:
                self._remember(call.id)
        if call is None:
            logger.debug("dropped %s reply, correlation_id=%r", kind, correlation_id)
            if self.on_drop is not None:
                self.on_drop(kind)
            return False
        call._settle(checked, None)
        return True

    def drop_undecodable(self, reason: str) -> None:
        """Count and drop a message of the reply queue that could not be decoded."""
        with self._lock:
            self.stats.undecodable += 1
        logger.warning("dropped an undecodable reply: %s", reason)
        if self.on_drop is not None:
            self.on_drop("undecodable")

    def _reject(self, call: PendingCall, exc: RejectedReply) -> None:
        with self._lock:
            self.stats.rejected += 1
        if self.on_drop is not None:
            self.on_drop("rejected")
        if not call.rejected:  # once per call: a flood of forgeries is not a flood of logs
            logger.warning("dropped a reply to %s [%s]: %s", call.task, call.id, exc)
        call.rejected = f"a reply was dropped: {exc}"

    def take_all(self) -> list[PendingCall]:
        """Stop tracking every pending call and return them."""
        with self._lock:
            calls = list(self._pending.values())
            self._pending.clear()
        return calls

    def fail_all(self, error: TaskRPCError) -> int:
        """Fail every pending call with ``error``; returns how many there were."""
        calls = self.take_all()
        for call in calls:
            call._settle(None, error)
        return len(calls)

    def fail(self, call: PendingCall, error: BaseException) -> None:
        """Fail one call (its publish failed)."""
        self.discard(call.id)
        call._settle(None, error)

    def _remember(self, call_id: str) -> None:
        answered = self._answered
        answered[call_id] = None
        if len(answered) > self._window:
            answered.popitem(last=False)
