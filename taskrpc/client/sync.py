"""The thread-safe, blocking client.

Two connections, each owned by one thread, because py-amqp connections are not
thread-safe: callers publish on the first (under a lock, with publisher confirms), and
a listener thread consumes the exclusive callback queue on the second.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from kombu import Connection

from ..exceptions import BrokerError, ClientClosed, ConnectionLost, Unroutable
from ..policies import RetryPolicy, retry_call
from ..transport import connect, declare_task_queues, task_exchange
from .base import OutgoingRequest, RequestBuilder, ResultLoader
from .listener import ReplyListener
from .replies import PendingCall, ReplyRouter, ReplyStats
from .result import AsyncResult

if TYPE_CHECKING:
    from ..app import App

logger = logging.getLogger("taskrpc.client")


class Client:
    """Sends requests and matches their replies. Usually reached as ``app.client``.

    Many calls may be in flight at once, from any number of threads. Creating a client
    does not block: it connects in the background, and each call waits for the
    connection at most until its own deadline.

    Example:
        >>> client = Client(app)  # doctest: +SKIP
        >>> client.send("taskrpc.fibonacci.fib", [10]).get()  # doctest: +SKIP
        55
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self._builder = RequestBuilder(app)
        self._router = ReplyRouter(app.settings.duplicate_window)
        self._declared: set[str] = set()
        self._publish_lock = threading.Lock()
        self._closed = False
        self._connection: Connection | None = None
        self._channel: Any = None
        self._returned: str | None = None
        self._listener = ReplyListener(
            app.settings, self._router, app.connect_retry, on_resend=self._resend
        )
        self._listener.start()

    @property
    def stats(self) -> ReplyStats:
        """Counters of unknown and duplicate replies dropped by this client."""
        return self._router.stats

    @property
    def unknown_replies(self) -> int:
        """Replies dropped because their correlation id matched no call."""
        return self._router.stats.unknown

    @property
    def duplicate_replies(self) -> int:
        """Replies dropped because their call had already been answered."""
        return self._router.stats.duplicate

    @property
    def pending(self) -> int:
        """Calls still waiting for a reply (whose handles are still referenced)."""
        return len(self._router)

    def send(
        self,
        task: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        queue: str | None = None,
        load_result: ResultLoader | None = None,
        retry: RetryPolicy | None = None,
        idempotent: bool = False,
    ) -> AsyncResult[Any]:
        """Publish a request for ``task`` and return its handle once the broker has it.

        Parameters:
            retry: Resend policy for failed publishes (``None``: the app's ``resend``).
            idempotent: Also resend, keeping the request id, if the reply queue is lost.

        Raises:
            ClientClosed: The client is closed.
            BrokerError: No connection before the call's deadline, or the publish failed.
            Unroutable: No queue is bound for the request.
        """
        if self._closed:
            raise ClientClosed("client is closed")
        request = self._builder.build(
            task, args, kwargs, reply_to=None,
            queue=queue or self.app.settings.default_queue, timeout=timeout,
        )
        reply_to = self._listener.wait_ready(request.deadline - time.monotonic())
        request.properties["reply_to"] = reply_to
        call = PendingCall(request.id, task, request.deadline)
        if idempotent:
            call.request, call.resendable = request, True
        self._router.add(call)  # before publishing: the reply can beat us back
        try:
            self._publish_with_retry(request, retry or self.app.resend)
        except BaseException:
            self._router.discard(call.id)
            raise
        return AsyncResult(self.app, call, load_result)

    def call(self, task: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Send a request and wait for its result (plain JSON data)."""
        return self.send(task, args, kwargs, timeout=timeout).get()

    def close(self) -> None:
        """Stop listening, fail every pending call with ``ClientClosed``, close connections."""
        if self._closed:
            return
        self._closed = True
        self._listener.stop()
        self._router.fail_all(ClientClosed("client closed while the call was pending"))
        with self._publish_lock:
            self._drop_connection()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _publish_with_retry(self, request: OutgoingRequest, policy: RetryPolicy) -> None:
        try:
            retry_call(
                lambda: self._publish(request),
                policy,
                errors=(ConnectionLost,),
                what=f"publishing {request.task} [{request.id}]",
                deadline=request.deadline,
            )
        except ConnectionLost as exc:
            raise BrokerError(f"could not publish {request.task}: {exc}") from exc

    def _publish(self, request: OutgoingRequest) -> None:
        """Publish once; ``ConnectionLost`` means it provably did not reach a queue."""
        with self._publish_lock:
            try:
                channel = self._ensure_channel()
                if request.queue not in self._declared:
                    declare_task_queues(channel, self.app.settings, [request.queue])
                    self._declared.add(request.queue)
                message = channel.prepare_message(
                    request.body,
                    content_type=request.content_type,
                    content_encoding=request.content_encoding,
                    headers=request.headers,
                    properties=request.properties,
                )
                self._returned = None
                channel.basic_publish(
                    message, self.app.settings.exchange, request.queue, mandatory=True,
                    confirm_timeout=max(request.deadline - time.monotonic(), 0.001),
                )
            except ClientClosed:
                raise
            except Exception as exc:  # unconnected, unwritten or unconfirmed: safe to resend
                self._drop_connection()
                raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc
            if self._returned is not None:
                self._declared.discard(request.queue)
                raise Unroutable(
                    f"no queue is bound for {request.task} on {request.queue!r} "
                    f"({self._returned}); is the queue deleted?"
                )

    def _resend(self, calls: list[PendingCall]) -> None:
        """Send idempotent calls again, same ids, to the new reply queue (listener thread)."""
        for call in calls:
            left = call.deadline - time.monotonic()
            if left <= 0:
                continue  # its get() times out on its own
            request: OutgoingRequest = call.request
            properties = {
                **request.properties,
                "reply_to": self._listener.reply_to,
                "expiration": str(max(1, int(left * 1000))),
            }
            try:
                self._publish_with_retry(
                    dataclasses.replace(request, properties=properties), self.app.resend
                )
            except Exception as exc:
                self._router.fail(call, exc)

    def _ensure_channel(self) -> Any:
        if self._closed:
            raise ClientClosed("client is closed")
        if self._channel is None:
            connection = connect(self.app.settings, confirms=True)
            try:
                channel = connection.channel()
                task_exchange(self.app.settings)(channel).declare()
                events = getattr(channel, "events", None)
                if events is not None:  # py-amqp: mandatory publishes come back here
                    events["basic_return"].add(self._on_return)
            except Exception:
                connection.release()
                raise
            self._connection, self._channel = connection, channel
        return self._channel

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        self._returned = str(exc)

    def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._declared.clear()
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken; nothing to save
                pass

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:
                pass
