"""The reply listener: a thread consuming the client's exclusive callback queue."""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from kombu import Consumer, Queue
from kombu.message import Message

from ..exceptions import BrokerError, ConnectionLost, Unroutable
from ..policies import RetryPolicy, retry_call
from ..settings import Settings
from ..transport import EventPump, connect, declare_task_queues, task_exchange
from .base import OutgoingRequest
from .publisher import ReturnTracker, publish_request
from .replies import PendingCall, RawReply, ReplyRouter

logger = logging.getLogger("taskrpc.client")

#: Callback queues are named this plus a random hex string.
REPLY_QUEUE_PREFIX = "taskrpc.reply."

#: RabbitMQ's pseudo-queue for direct reply-to: replies go straight to the consuming channel.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"

#: Called with the calls that survived the loss of a reply queue (idempotent ones), once a
#: new queue is ready, so that the client can send them again.
ResendHook = Callable[[list[PendingCall]], None]


class _Outgoing:
    """A request handed to the listener thread to publish (direct reply-to mode)."""

    __slots__ = ("request", "done", "error")

    def __init__(self, request: OutgoingRequest) -> None:
        self.request = request
        self.done = threading.Event()
        self.error: BaseException | None = None


class ReplyListener:
    """Owns the reply connection; hands every reply to the router.

    The callback queue has a random name, is exclusive and auto-deleted: it lives exactly
    as long as this listener's connection. If the connection drops, calls waiting on the
    old queue can never be answered there: they fail at once with :class:`ConnectionLost`,
    except idempotent ones, which are handed to ``on_resend`` once a new queue is ready.
    Reconnection backs off as ``retry`` says and never gives up while the client is open.

    With ``direct``, it uses RabbitMQ's direct reply-to instead of a queue of its own.
    Requests must then be published on the consuming channel, so callers hand them to
    this thread through :meth:`publish`.
    """

    def __init__(
        self,
        settings: Settings,
        router: ReplyRouter,
        retry: RetryPolicy,
        on_resend: ResendHook | None = None,
        *,
        direct: bool = False,
    ) -> None:
        self._settings = settings
        self._direct = direct
        self._outbox: collections.deque[_Outgoing] = collections.deque()
        self._router = router
        self._retry = retry
        self._on_resend = on_resend
        self._ready = threading.Event()
        self._gave_up = threading.Event()  # set while retries are exhausted; calls fail fast
        self._stopping = False
        self._stopped = threading.Event()  # wakes the reconnection backoff at once
        self._pump: EventPump | None = None
        self._survivors: list[PendingCall] = []
        self._thread = threading.Thread(target=self._run, name="taskrpc-replies", daemon=True)
        #: Name of the current callback queue (every request's ``reply_to``).
        self.reply_to = ""
        #: Why the last connection attempt failed, for error messages.
        self.last_error = ""

    def start(self) -> None:
        """Start connecting in the background."""
        self._thread.start()

    def wait_ready(self, timeout: float) -> str:
        """Return the callback queue's name once it is consumed.

        Raises:
            BrokerError: No queue within ``timeout`` seconds, or the connection retry policy
                is exhausted (the listener keeps trying in the background).
        """
        deadline = time.monotonic() + timeout
        while not self._ready.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._gave_up.is_set():
                reason = self.last_error or "timed out"
                raise BrokerError(f"no connection to the broker: {reason}")
            self._ready.wait(min(left, 0.05))
        return self.reply_to

    def publish(self, request: OutgoingRequest, policy: RetryPolicy) -> None:
        """Publish through this listener's channel (direct mode), retrying safe failures.

        Raises:
            Unroutable: No queue is bound for the request.
            BrokerError: Not published before the retries or the deadline ran out.
        """
        try:
            retry_call(
                lambda: self._publish_once(request),
                policy,
                errors=(ConnectionLost,),
                what=f"publishing {request.task} [{request.id}]",
                deadline=request.deadline,
            )
        except ConnectionLost as exc:
            raise BrokerError(f"could not publish {request.task}: {exc}") from exc

    def _publish_once(self, request: OutgoingRequest) -> None:
        self.wait_ready(request.deadline - time.monotonic())
        item = _Outgoing(request)
        self._outbox.append(item)
        pump = self._pump
        if pump is not None:
            pump.wake()
        if not item.done.wait(max(request.deadline - time.monotonic(), 0.0)):
            raise BrokerError(f"{request.task} [{request.id}] not published before its deadline")
        if item.error is not None:
            raise item.error

    def stop(self) -> None:
        """Stop consuming and close the connection (the queue goes with it)."""
        self._stopping = True
        self._stopped.set()
        if self._pump is not None:
            self._pump.wake()
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                self._serve()
                attempt = 0
            except BrokerError as exc:  # could not connect
                self.last_error = str(exc)
                if attempt >= self._retry.max_retries:
                    self._gave_up.set()
            except Exception as exc:  # the connection broke under us
                if self._stopping:
                    return
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._ready.clear()
                self._lose_queue()
            attempt += 1
            self._stopped.wait(self._retry.delay(attempt))

    def _lose_queue(self) -> None:
        error = ConnectionLost(f"reply queue lost ({self.last_error})")
        calls = self._router.take_all()
        for call in calls:
            if call.resendable and self._on_resend is not None:
                self._survivors.append(call)
            else:
                call._settle(None, error)
        logger.warning(
            "reply connection lost (%s); %d pending calls failed, %d will be resent",
            self.last_error,
            len(calls) - len(self._survivors),
            len(self._survivors),
        )

    def _serve(self) -> None:
        with connect(self._settings, confirms=self._direct) as connection:
            channel = connection.channel()
            if self._direct:
                name = DIRECT_REPLY_TO
                queue = Queue(name, no_declare=True)(channel)
                task_exchange(self._settings)(channel).declare()
            else:
                name = f"{REPLY_QUEUE_PREFIX}{uuid.uuid4().hex}"
                queue = Queue(name, exclusive=True, auto_delete=True, durable=False)(channel)
                queue.declare()
            consumer = Consumer(
                channel, [queue], no_ack=True, on_message=self._on_reply, auto_declare=False
            )
            consumer.consume()
            self._pump = pump = EventPump(connection)
            self.reply_to = name
            self._gave_up.clear()
            self._ready.set()
            self._resend_survivors()
            returns, declared = ReturnTracker(channel), set[str]()
            try:
                while not self._stopping:
                    pump.wait(0 if self._outbox else 1.0)
                    if self._outbox:
                        self._flush_outbox(channel, returns, declared)
            finally:
                self._pump = None
                pump.close()
                self._fail_outbox()

    def _flush_outbox(self, channel: Any, returns: ReturnTracker, declared: set[str]) -> None:
        while self._outbox:
            item = self._outbox.popleft()
            request = item.request
            try:
                if request.queue not in declared:
                    declare_task_queues(channel, self._settings, [request.queue])
                    declared.add(request.queue)
                publish_request(channel, self._settings.exchange, request, returns)
            except Unroutable as exc:
                declared.discard(request.queue)
                item.error = exc
            except Exception as exc:  # the connection broke: the caller may resend
                item.error = ConnectionLost(f"{type(exc).__name__}: {exc}")
                item.done.set()
                raise
            item.done.set()

    def _fail_outbox(self) -> None:
        while self._outbox:
            item = self._outbox.popleft()
            item.error = ConnectionLost(f"reply connection lost ({self.last_error or 'closed'})")
            item.done.set()

    def _resend_survivors(self) -> None:
        survivors, self._survivors = self._survivors, []
        if survivors and self._on_resend is not None:
            for call in survivors:
                self._router.add(call)
            self._on_resend(survivors)

    def _on_reply(self, message: Message) -> None:
        correlation_id = message.properties.get("correlation_id")
        reply = RawReply(
            message.body,
            message.content_type,
            message.content_encoding,
            message.headers,
            correlation_id,
            message.delivery_info.get("routing_key"),
        )
        self._router.deliver(correlation_id, reply)
