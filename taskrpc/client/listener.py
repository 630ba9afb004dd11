"""The reply listener: a thread consuming the client's exclusive callback queue."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from kombu import Consumer, Queue
from kombu.message import Message

from ..exceptions import BrokerError, ConnectionLost
from ..policies import RetryPolicy
from ..settings import Settings
from ..transport import EventPump, connect
from .replies import PendingCall, RawReply, ReplyRouter

logger = logging.getLogger("taskrpc.client")

#: Callback queues are named this plus a random hex string.
REPLY_QUEUE_PREFIX = "taskrpc.reply."

#: Called with the calls that survived the loss of a reply queue (idempotent ones), once a
#: new queue is ready, so that the client can send them again.
ResendHook = Callable[[list[PendingCall]], None]


class ReplyListener:
    """Owns the reply connection; hands every reply to the router.

    The callback queue has a random name, is exclusive and auto-deleted: it lives exactly
    as long as this listener's connection. If the connection drops, calls waiting on the
    old queue can never be answered there: they fail at once with :class:`ConnectionLost`,
    except idempotent ones, which are handed to ``on_resend`` once a new queue is ready.
    Reconnection backs off as ``retry`` says and never gives up while the client is open.
    """

    def __init__(
        self,
        settings: Settings,
        router: ReplyRouter,
        retry: RetryPolicy,
        on_resend: ResendHook | None = None,
    ) -> None:
        self._settings = settings
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
        with connect(self._settings) as connection:
            channel = connection.channel()
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
            try:
                while not self._stopping:
                    pump.wait(1.0)
            finally:
                self._pump = None
                pump.close()

    def _resend_survivors(self) -> None:
        survivors, self._survivors = self._survivors, []
        if survivors and self._on_resend is not None:
            for call in survivors:
                self._router.add(call)
            self._on_resend(survivors)

    def _on_reply(self, message: Message) -> None:
        self._router.deliver(
            message.properties.get("correlation_id"),
            RawReply(message.body, message.content_type, message.content_encoding),
        )
