"""What a worker does with a delivery it cannot serve: confine it, settle it, count it.

A delivery can go wrong at any stage: py-amqp cannot decode its properties or headers,
its headers or body are refused (size, signature, content type, decode budgets,
validation), or its reply cannot be encoded (a ``reply_to`` holding a lone surrogate).
Whatever the stage, the policy is the same, and applies to that one delivery only:

* it is **rejected without requeue** (``basic.reject``, ``requeue=False``), never acked
  and never requeued: a queue with a dead-letter exchange keeps it there for a look,
  and it can never come back to kill or stall another worker;
* the reason is **logged once**, one line naming the request's ``correlation_id`` (which
  a dead-lettered copy keeps), without a traceback (and at most
  :data:`LOG_BURST` lines per :data:`LOG_PERIOD` seconds, then a summary: a flood of bad
  input must not flood the log);
* it is **counted** by reason (:class:`Rejections`, ``Worker.rejections``), for metrics;
* the caller is **answered** with a typed error when the delivery names a ``reply_to``
  that can still be encoded (the loop does that before calling :meth:`Rejections.record`);
* the worker **keeps serving**: nothing raised while handling one delivery reaches the
  consume loop.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

logger = logging.getLogger("taskrpc.worker")

#: Reasons counted by :class:`Rejections` (``type_name`` of the refusal otherwise).
UNDECODABLE = "Undecodable"  #: py-amqp could not decode the delivery's frames
UNREADABLE = "Unreadable"  #: its properties or headers broke the worker's own reading
UNANSWERABLE = "ReplyUnencodable"  #: its reply could not be encoded (bad ``reply_to``)

#: Error codes of replies that refuse a request rather than report on a run: such a
#: request is rejected (dead-lettered), not acked.
REJECTED_CODES = frozenset({"bad_request", "invalid_arguments", "unknown_task"})

#: Rejections logged in full per :data:`LOG_PERIOD`; the rest are summed up once.
LOG_BURST = 20
#: Seconds over which :data:`LOG_BURST` applies.
LOG_PERIOD = 10.0


class Rejections:
    """Counts of deliveries a worker rejected, by reason, and their rate-limited log.

    Example:
        >>> rejections = Rejections()
        >>> rejections.record("DecodeError", "undecodable body", delivery_tag=7)
        >>> rejections.total, rejections.counts()
        (1, {'DecodeError': 1})
    """

    def __init__(self) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._period_start = 0.0
        self._logged = 0
        self._suppressed = 0

    @property
    def total(self) -> int:
        """Deliveries rejected since the worker started."""
        return sum(self._counts.values())

    def counts(self) -> dict[str, int]:
        """Rejected deliveries by reason (``type_name`` of the refusal, or one of this
        module's constants)."""
        with self._lock:
            return dict(self._counts)

    def record(
        self, reason: str, detail: str, *, delivery_tag: object = None, request_id: object = None
    ) -> None:
        """Count one rejected delivery and log why, once (rate-limited); the request id
        (its ``correlation_id``, kept by a dead-lettered copy) is logged when known."""
        with self._lock:
            self._counts[reason] += 1
            now = time.monotonic()
            if now - self._period_start >= LOG_PERIOD:
                if self._suppressed:
                    logger.warning(
                        "%d more deliveries rejected in the last %.0f s (not logged one by one)",
                        self._suppressed,
                        now - self._period_start,
                    )
                self._period_start, self._logged, self._suppressed = now, 0, 0
            if self._logged >= LOG_BURST:
                self._suppressed += 1
                return
            self._logged += 1
        request = f" (request {str(request_id)[:64]!r})" if request_id else ""
        logger.warning(
            "rejected delivery %s%s without requeue (%s): %s",
            delivery_tag,
            request,
            reason,
            detail[:300],
        )
