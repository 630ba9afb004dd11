"""The consume loop: take requests, hand them to the pool, publish replies, then ack.

Everything that touches the connection happens in the loop's own thread. The delivery
callback only appends to an inbox: it runs in the middle of reading the socket, and
py-amqp's own ``basic_publish`` reads the socket too, so publishing from the callback
re-entered it for the next prefetched message (with prefetch 100, ``RecursionError``).
The loop talks only to the :class:`~taskrpc.transport.Transport` interface, so the
in-process transport runs exactly this code. Answered requests are acked in batches, at
the end of each pass of the loop.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ..exceptions import BadRequest
from ..messages import HEADER_TASK, Outcome
from ..middleware import (
    SOURCE_CACHE,
    SOURCE_REFUSED,
    SOURCE_RUN,
    Middleware,
    first_refusal,
    overriding,
    run_hooks,
)
from ..transport import Delivery, Transport, declare_task_queues
from .acks import ACK_BATCH, ACK_DELAY, ack_answered, oldest_outstanding
from .admission import admit, refusal
from .baddeliveries import BadDeliveries
from .executor import Job
from .intake import job_of
from .keeper import ConnectionKeeper
from .poison import declare_dead_letters, settle_dead_letter
from .pools import Pool
from .recent import RecentReplies, fingerprint, reply_key
from .refusals import replayed, too_large
from .rejects import REJECTED_CODES, UNANSWERABLE, UNDECODABLE, UNREADABLE, Rejections
from .replying import UNENCODABLE, publish_reply

if TYPE_CHECKING:
    from ..app import App

logger = logging.getLogger("taskrpc.worker")

#: Longest the loop sleeps when idle (seconds); it wakes at once for any event.
IDLE_WAIT = 1.0


class ConsumeLoop:
    """Serves ``queues`` on one connection until :meth:`stop`; one instance per connection."""

    def __init__(
        self,
        app: App,
        transport: Transport,
        pool: Pool,
        queues: list[str],
        prefetch: int,
        recent: RecentReplies,
        rejections: Rejections | None = None,
    ) -> None:
        self.app = app
        self.pool = pool
        self._recent = recent
        self.rejections = rejections if rejections is not None else Rejections()
        self.transport = transport
        self._inbox: collections.deque[Delivery] = collections.deque()
        self._bad = BadDeliveries(app, transport, self._inbox, self.rejections)
        self._oversized = self._bad.oversized  # shared: popped as each request starts
        transport.qos(prefetch)
        transport.on_bad_delivery = self._bad.take
        self._publish = transport.publish
        self._send_ack = transport.ack
        declare_task_queues(transport, app.settings, queues)
        self._queues = list(queues) + declare_dead_letters(transport, app.settings, queues)
        self._consumer_tags: list[str] = []
        self._completed: collections.deque[tuple[int, Outcome]] = collections.deque()
        self._in_flight: dict[int, Delivery] = {}
        self._queue_of: dict[str, str] = {}  # consumer tag -> queue
        self._answered: list[int] = []  # replied to, not yet acked
        self._answered_since = 0.0
        self._stopping = False
        self._cancelled = False
        self._loop_thread = threading.get_ident()
        self._keeper: ConnectionKeeper | None = None
        #: Hooks run in this loop (the worker sets its own list: the app's and its own).
        self.hooks: list[Middleware] = list(app.middleware)
        self._reply_hooks: list[Middleware] = []  # those with an after_reply, set by run()
        self._observed: dict[int, tuple[Job, str]] = {}  # only while hooks are set

    @property
    def in_flight(self) -> int:
        """Requests started and not yet answered."""
        return len(self._in_flight)

    def stop(self) -> None:
        """Stop taking requests; :meth:`run` returns once the ones started are answered.

        Safe from signal handlers and other threads.
        """
        self._stopping = True
        self.transport.wake()

    def run(self) -> None:
        """Consume until stopped and drained. Connection errors propagate to the caller."""
        self._consume()
        self._loop_thread = threading.get_ident()
        self._reply_hooks = overriding(reversed(self.hooks), "after_reply")
        # A pool that runs jobs inside ``submit``, in this thread (the solo pool, rate-limited
        # or not, is ``inline``): the keeper serves the connection meanwhile.
        inline = getattr(self.pool, "inline", False)
        self._keeper = ConnectionKeeper(self.transport) if inline else None
        try:
            self._serve()
        finally:
            if self._keeper is not None:
                self._keeper.stop()

    def _serve(self) -> None:
        keeper = self._keeper
        while True:
            if keeper is not None and keeper.error is not None:
                raise keeper.error  # the connection died while a job ran
            with self.transport.batch():  # this pass's replies and acks: one write
                self._publish_completed()
                if self._stopping:
                    self._stop_consuming()
                    if not self._in_flight:
                        self._flush_acks()
                        return
                while self._start_jobs():
                    self._publish_completed()  # the solo pool has finished them already
                self._flush_acks()
            startable = self._inbox and len(self._in_flight) < self.pool.size
            busy = startable or self._completed or self._bad.pending
            self.transport.wait(0 if busy else IDLE_WAIT)

    def _consume(self) -> None:
        for queue in self._queues:
            tag = self.transport.consume(queue, self._inbox.append)
            self._consumer_tags.append(tag)
            self._queue_of[tag] = str(getattr(queue, "name", queue))

    def _start_jobs(self) -> bool:
        started = False
        while self._inbox and len(self._in_flight) < self.pool.size:
            self._start(self._inbox.popleft())
            started = True
        return started

    def on_bad_delivery(self, delivery_tag: Any, reason: str) -> None:
        """Reject a delivery the AMQP layer could not decode (see :mod:`.rejects`)."""
        self._reject(delivery_tag, UNDECODABLE, reason)

    def _reject(self, tag: Any, reason: str, detail: str, request_id: object = None) -> None:
        """Reject one delivery without requeue, now (before any ``multiple`` ack could
        cover its tag), then count and log it."""
        self.transport.reject(tag, requeue=False)
        self.rejections.record(reason, detail, delivery_tag=tag, request_id=request_id)

    def _start(self, message: Delivery) -> None:
        """Start one delivery; whatever breaks while reading it is confined to it."""
        tag = message.delivery_tag
        try:
            self._start_checked(message)
        except Exception as exc:  # properties, headers or body nothing else can read
            if any(done == tag for done, _ in self._completed):  # its answer is on its way
                logger.warning("delivery %s: %s: %s", tag, type(exc).__name__, exc)
                return
            self._in_flight.pop(tag, None)
            self._observed.pop(tag, None)
            self._reject(tag, UNREADABLE, f"{type(exc).__name__}: {exc}")

    def _start_checked(self, message: Delivery) -> None:
        tag = message.delivery_tag
        job = job_of(message, self.app)
        self._in_flight[tag] = message
        if job.redelivered:
            logger.warning(
                "redelivered request %s [%s]: it may have run before", job.task, job.request_id
            )
        hooks = self.hooks
        if hooks:
            run_hooks(hooks, "before_request", job)
        dead = settle_dead_letter(self.app, message, job)  # a poison request's answer
        if dead is not None:
            self._in_flight[tag], outcome = dead
            self._observe(tag, job, SOURCE_REFUSED)
            self._on_done(tag, outcome)
            return
        announced = self._oversized.pop(tag, 0)
        if announced:  # the transport dropped its body: refuse it as admit() would
            refused: Outcome | None = too_large(self.app, job, announced)
        else:
            refused = admit(self.app, job)  # size, headers, signature: before any decoding
        if refused is None and hooks:
            error = first_refusal(hooks, job)  # e.g. revoked
            refused = None if error is None else refusal(self.app, job, error)
        if refused is not None:
            self._observe(tag, job, SOURCE_REFUSED)
            self._on_done(tag, refused)
            return
        try:
            key = reply_key(message.properties)
            recent = self._recent  # the fingerprint only for an id it remembers
            cached = recent.get(key, fingerprint(message)) if recent.knows(key) else None
        except BadRequest as exc:  # the id of a recent request, on another request
            logger.warning("request %s [%s] refused: %s", job.task, job.request_id, exc)
            self._on_done(tag, refusal(self.app, job, exc))
            return
        if cached is not None:  # answered already (a lost ack, or a resend): answer again
            logger.info("request %s [%s] answered from the reply cache", job.task, job.request_id)
            self._observe(tag, job, SOURCE_CACHE)
            self._on_done(tag, cached)
            return
        if job.redelivered and self.app.codec.answered(job.headers):  # and not in the cache
            self._observe(tag, job, SOURCE_REFUSED)
            self._on_done(tag, replayed(self.app, job))
            return
        self._observe(tag, job, SOURCE_RUN)
        if self._keeper is None:
            self.pool.submit(job, lambda outcome: self._on_done(tag, outcome))
            return
        with self._keeper.job(job.task):
            self.pool.submit(job, lambda outcome: self._on_done(tag, outcome))

    def _observe(self, tag: int, job: Job, source: str) -> None:
        if self.hooks:
            self._observed[tag] = (job, source)

    def _on_done(self, tag: int, outcome: Outcome) -> None:  # any thread
        self._completed.append((tag, outcome))
        if threading.get_ident() != self._loop_thread:  # the loop itself needs no wake-up
            self.transport.wake()

    def _publish_completed(self) -> None:
        if self._bad.pending:  # rare: undecodable deliveries to answer and reject
            self._bad.answer(self._publish, self._queue_of, self._reject)
        while self._completed:
            tag, outcome = self._completed.popleft()
            message = self._in_flight.pop(tag)
            if outcome.verified:
                self.app.codec.mark_answered(message.headers)
            key = reply_key(message.properties)
            if key is not None and outcome.error_code != "bad_request":
                # A refusal depends on the message alone: checking again is cheap, and a
                # refused message must not decide the answer to the next one of that id.
                self._recent.put(key, outcome, fingerprint(message))
            observed = self._observed.pop(tag, None)
            if observed is not None:
                run_hooks(reversed(self.hooks), "after_request", observed[0], outcome, observed[1])
            try:
                publish_reply(self.app, self._publish, message, outcome)
            except UNENCODABLE as exc:
                # Encoding the reply frame failed (connection errors are not these):
                # e.g. a ``reply_to`` holding a lone surrogate. Nobody can be answered.
                self._reject(tag, UNANSWERABLE, f"{type(exc).__name__}: {exc}")
                continue
            if self._reply_hooks:  # told the reply is out: so it must be, not held
                self.transport.flush()
                task = (message.headers or {}).get(HEADER_TASK)
                run_hooks(
                    self._reply_hooks, "after_reply", message.properties.get("correlation_id"), task
                )
            if outcome.error_code in REJECTED_CODES:  # refused: rejected, not acked
                detail = f"{outcome.error_code}: {outcome.error_message}"
                reason = outcome.error_type or outcome.error_code or "-"
                self._reject(tag, reason, detail, message.properties.get("correlation_id"))
                continue
            if not self._answered:
                self._answered_since = time.monotonic()
            self._answered.append(tag)  # acked only now: a crash before means redelivery
        if self._answered and (
            len(self._answered) >= ACK_BATCH or time.monotonic() - self._answered_since >= ACK_DELAY
        ):
            self._flush_acks()

    def _flush_acks(self) -> None:
        """Ack the answered requests (see :func:`.acks.ack_answered`)."""
        tags, self._answered = self._answered, []
        if tags:
            oldest = oldest_outstanding(self._bad.pending, self._in_flight, self._inbox)
            ack_answered(self._send_ack, tags, oldest)

    def _stop_consuming(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        for tag in self._consumer_tags:
            self.transport.cancel(tag)
        for message in self._inbox:  # not started: give them to another worker now
            self.transport.reject(message.delivery_tag, requeue=True)
        requeued = len(self._inbox)
        self._inbox.clear()
        logger.info(
            "stopped consuming; finishing %d in flight, requeued %d", len(self._in_flight), requeued
        )
