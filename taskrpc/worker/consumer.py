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
import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from .. import delays
from ..exceptions import BadRequest
from ..messages import HEADER_DEADLINE, HEADER_TASK, Outcome, reply_headers
from ..middleware import (
    SOURCE_CACHE,
    SOURCE_REFUSED,
    SOURCE_RUN,
    Middleware,
    first_refusal,
    overriding,
    run_hooks,
)
from ..security.signing import HEADER_KEY_ID, Envelope
from ..transport import BadDelivery, Delivery, Transport, declare_task_queues
from .admission import admit, refusal
from .executor import Job
from .keeper import ConnectionKeeper
from .poison import declare_dead_letters, delivery_count, settle_dead_letter
from .pools import Pool
from .recent import RecentReplies, fingerprint, reply_key
from .rejects import REJECTED_CODES, UNANSWERABLE, UNDECODABLE, UNREADABLE, Rejections

if TYPE_CHECKING:
    from ..app import App

logger = logging.getLogger("taskrpc.worker")

#: Longest the loop sleeps when idle (seconds); it wakes at once for any event.
IDLE_WAIT = 1.0

#: Answered requests are acked together, with one ``multiple`` ack, at the end of each
#: pass of the loop, or sooner once this many are waiting or the oldest has waited this
#: long (seconds): batching saves a frame per request under load, and the bound keeps
#: the window between reply and ack (a crash there means a second run) short.
ACK_BATCH = 64
ACK_DELAY = 0.002


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
        transport.qos(prefetch)
        transport.on_bad_delivery = self._on_bad_delivery
        self._publish = transport.publish
        self._send_ack = transport.ack
        declare_task_queues(transport, app.settings, queues)
        self._queues = list(queues) + declare_dead_letters(transport, app.settings, queues)
        self._consumer_tags: list[str] = []
        self._inbox: collections.deque[Delivery] = collections.deque()
        self._completed: collections.deque[tuple[int, Outcome]] = collections.deque()
        self._in_flight: dict[int, Delivery] = {}
        self._bad: collections.deque[BadDelivery] = collections.deque()  # to answer
        self._queue_of: dict[str, str] = {}  # consumer tag -> queue
        self._answered: list[int] = []  # replied to, not yet acked
        self._answered_since = 0.0
        self._stopping = False
        self._cancelled = False
        self._loop_thread = threading.get_ident()
        self._keeper: ConnectionKeeper | None = None
        self._oversized: dict[int, int] = {}  # delivery tag -> body size announced
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
        # A pool that runs jobs in this thread: the keeper serves the connection meanwhile.
        self._keeper = ConnectionKeeper(self.transport) if _inline(self.pool) else None
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
            busy = startable or self._completed or self._bad
            self.transport.wait(0 if busy else IDLE_WAIT)

    def _consume(self) -> None:
        for queue in self._queues:
            tag = self.transport.consume(queue, self._inbox.append)
            self._consumer_tags.append(tag)
            self._queue_of[tag] = str(getattr(queue, "name", queue))

    def _on_bad_delivery(self, bad: BadDelivery) -> None:
        """The transport's hook: a delivery it could not decode, or too large to take."""
        if bad.properties is not None and bad.needs_settling:
            # Too large, its body dropped unread: refused in turn like any request, so
            # that its caller hears why (the size is checked before anything else).
            properties = bad.properties
            self._oversized[bad.delivery_tag] = bad.announced
            self._inbox.append(
                Delivery(
                    bad.delivery_tag,
                    b"",
                    properties,
                    properties.get("application_headers") or {},
                    properties.get("content_type"),
                    properties.get("content_encoding"),
                    bad.exchange,
                    bad.routing_key,
                    bad.redelivered,
                    bad.consumer_tag,
                )
            )
        elif bad.needs_settling:  # answered (unsigned) if it can be, then rejected,
            self._bad.append(bad)  # by the loop: this runs in the middle of a read
            self.transport.wake()
        else:  # a no-ack consumer's: nothing to reject
            self.rejections.record(UNDECODABLE, bad.reason, delivery_tag=bad.delivery_tag)

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
        job = _job_of(message, self.app)
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
            limit = self.app.codec.max_size
            too_large = BadRequest(
                f"body of {announced} bytes exceeds the limit of {limit}",
                type_name="PayloadTooLarge",
            )
            refused: Outcome | None = refusal(self.app, job, too_large)
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
            error = BadRequest(
                "request replayed: this worker answered it already", type_name="BadSignature"
            )
            self._observe(tag, job, SOURCE_REFUSED)
            self._on_done(tag, refusal(self.app, job, error))
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

    def _answer_bad(self) -> None:
        """Answer the callers of undecodable deliveries that named a ``reply_to``, then
        reject those deliveries."""
        while self._bad:
            bad = self._bad.popleft()
            kind = _kind_of(bad)
            error = BadRequest(bad.reason, type_name=kind)
            queue = self._queue_of.get(bad.consumer_tag, "")
            bare = self.app.bare_task(queue) if queue else None
            job = Job(bad.correlation_id or "", bare.name if bare else "", b"", None)
            job = dataclasses.replace(job, reply_to=bad.reply_to, routing_key=queue)
            # Not a request (no hooks run): counted by the rejections, which metrics export.
            outcome = refusal(self.app, dataclasses.replace(job, bare=bare is not None), error)
            outcome = dataclasses.replace(outcome, verified=False)
            if bad.reply_to:
                properties = {"reply_to": bad.reply_to, "correlation_id": bad.correlation_id}
                answer = Delivery(
                    bad.delivery_tag, b"", properties, {}, None, None, "", queue, False, ""
                )
                try:
                    self._reply(answer, outcome)
                except (UnicodeError, ValueError, TypeError, OverflowError):
                    pass  # unanswerable after all: rejected all the same
            self._reject(bad.delivery_tag, kind, bad.reason, bad.correlation_id)

    def _publish_completed(self) -> None:
        self._answer_bad()
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
                self._reply(message, outcome)
            except (UnicodeError, ValueError, TypeError, OverflowError) as exc:
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
        """Ack the answered requests: one ``multiple`` ack for every tag below the oldest
        request still in hand, one ack each for the rest."""
        tags, self._answered = self._answered, []
        if not tags:
            return
        oldest = self._oldest_outstanding()
        below = [tag for tag in tags if tag < oldest]
        if below:
            self._send_ack(max(below), len(below) > 1)
        for tag in tags:
            if tag >= oldest:
                self._send_ack(tag, False)

    def _oldest_outstanding(self) -> float:
        """The lowest delivery tag received and not yet answered (started or waiting)."""
        oldest: float = float("inf")
        if self._bad:  # undecodable, to be answered and rejected
            oldest = min(bad.delivery_tag for bad in self._bad)
        if self._in_flight:  # insertion order is start order, and requests start in order
            oldest = next(iter(self._in_flight))
        if self._inbox:
            oldest = min(oldest, self._inbox[0].delivery_tag)
        return oldest

    def _reply(self, message: Delivery, outcome: Outcome) -> None:
        properties = message.properties
        reply_to = properties.get("reply_to")
        if not reply_to:
            return
        reply_properties: dict[str, Any] = {"delivery_mode": 1}
        correlation_id = properties.get("correlation_id") or properties.get("message_id")
        if correlation_id is not None:
            reply_properties["correlation_id"] = correlation_id
        headers = reply_headers(outcome.ok)
        envelope = Envelope(
            "reply",
            outcome.content_type,
            outcome.content_encoding,
            correlation_id,
            None,
            reply_to,
            headers,
        )
        request_key = (message.headers or {}).get(HEADER_KEY_ID)
        key_id = request_key if isinstance(request_key, str) else None
        if outcome.verified:  # an unverified request is never answered with a signature
            headers.update(self.app.codec.sign(outcome.body, envelope, key_id=key_id))
        reply_properties["content_type"] = outcome.content_type
        reply_properties["content_encoding"] = outcome.content_encoding
        reply_properties["application_headers"] = headers
        self._publish(outcome.body, reply_properties, "", reply_to)

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


def _inline(pool: Pool) -> bool:
    """Whether ``pool`` runs jobs inside ``submit`` (the solo pool, rate-limited or not)."""
    return bool(getattr(pool, "inline", False))


def _job_of(message: Delivery, app: App) -> Job:
    properties = message.properties
    headers = message.headers or {}
    task = headers.get(HEADER_TASK)
    deadline = headers.get(HEADER_DEADLINE)
    # A delayed request keeps the routing key it crossed the delay cascade with.
    routing_key = delays.destination(message.routing_key or "")
    redelivered = message.redelivered
    plain = not any(str(name).startswith("taskrpc-") for name in headers)
    bare = app.bare_task(routing_key) if plain else None  # a plain client, on a bare queue
    if bare is not None:
        task = bare.name
    return Job(
        request_id=str(properties.get("correlation_id") or properties.get("message_id") or ""),
        task=task if isinstance(task, str) else "",
        body=message.body,
        content_type=message.content_type or None,
        content_encoding=message.content_encoding or None,
        headers=headers,
        deadline=float(deadline) if isinstance(deadline, (int, float)) else None,
        redelivered=redelivered,
        delivery_count=delivery_count(headers, redelivered),
        reply_to=properties.get("reply_to") or None,
        routing_key=routing_key,
        bare=bare is not None,
    )


def _kind_of(bad: BadDelivery) -> str:
    """The refusal a bad delivery is answered and counted as: too large, or undecodable."""
    return "PayloadTooLarge" if bad.reason.startswith("body of") else UNDECODABLE
