"""The reply listener: a thread consuming the client's exclusive callback queue."""

from __future__ import annotations

import logging
import threading
import time
import uuid

from kombu import Consumer, Queue
from kombu.message import Message

from ..exceptions import BrokerError, ConnectionLost
from ..settings import Settings
from ..transport import EventPump, connect
from .replies import ReplyRouter

logger = logging.getLogger("taskrpc.client")

#: Seconds between reconnection attempts after the listener lost its connection.
RECONNECT_INTERVAL = 0.5
#: Callback queues are named this plus a random hex string.
REPLY_QUEUE_PREFIX = "taskrpc.reply."


class ReplyListener:
    """Owns the reply connection; hands every reply to the router.

    The callback queue has a random name, is exclusive and auto-deleted: it lives exactly as
    long as this listener's connection. If the connection drops, calls waiting on the old
    queue can never be answered, so they fail at once with :class:`ConnectionLost`, and a
    new queue is declared on reconnection.
    """

    def __init__(self, settings: Settings, router: ReplyRouter) -> None:
        self._settings = settings
        self._router = router
        self._ready = threading.Event()
        self._stopping = False
        self._error: BaseException | None = None
        self._pump: EventPump | None = None
        self._thread = threading.Thread(target=self._run, name="taskrpc-replies", daemon=True)
        #: Name of the current callback queue (every request's ``reply_to``).
        self.reply_to = ""

    def start_and_wait(self) -> None:
        """Start the thread and return once the callback queue is being consumed.

        Raises:
            BrokerError: The first connection failed.
        """
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop consuming and close the connection (the queue goes with it)."""
        self._stopping = True
        if self._pump is not None:
            self._pump.wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        first = True
        while not self._stopping:
            try:
                self._serve()
            except BrokerError as exc:
                if first:
                    self._error = exc
                    self._ready.set()
                    return
                time.sleep(RECONNECT_INTERVAL)
            except Exception as exc:  # the connection broke under us
                if self._stopping:
                    return
                reason = f"{type(exc).__name__}: {exc}"
                failed = self._router.fail_all(ConnectionLost(f"reply queue lost ({reason})"))
                logger.warning(
                    "reply connection lost (%s); %d pending calls failed", reason, failed
                )
                time.sleep(RECONNECT_INTERVAL)
            first = False

    def _serve(self) -> None:
        with connect(self._settings) as connection:
            channel = connection.channel()
            name = f"{REPLY_QUEUE_PREFIX}{uuid.uuid4().hex}"
            queue = Queue(name, exclusive=True, auto_delete=True, durable=False)(channel)
            queue.declare()
            consumer = Consumer(
                channel, [queue], no_ack=True, on_message=self._on_reply, auto_declare=False
            )
            self.reply_to = name
            consumer.consume()
            self._pump = pump = EventPump(connection)
            self._ready.set()
            try:
                while not self._stopping:
                    pump.wait(1.0)
            finally:
                self._pump = None
                pump.close()

    def _on_reply(self, message: Message) -> None:
        properties = message.properties
        self._router.deliver(properties.get("correlation_id"), message.body, message.content_type)
