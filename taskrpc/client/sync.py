"""The thread-safe, blocking client.

Two connections, each owned by one thread, because py-amqp connections are not
thread-safe: callers publish on the first (under a lock), and a listener thread
consumes the exclusive callback queue on the second.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from kombu import Connection

from ..exceptions import BrokerError, ClientClosed
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

    Many calls may be in flight at once, from any number of threads.

    Example:
        >>> client = Client(app)  # doctest: +SKIP
        >>> client.send("taskrpc.fibonacci.fib", [10]).get()  # doctest: +SKIP
        55
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self._builder = RequestBuilder(app)
        self._router = ReplyRouter(app.settings.duplicate_window)
        self._exchange_name = app.settings.exchange
        self._declared: set[str] = set()
        self._publish_lock = threading.Lock()
        self._closed = False
        self._listener = ReplyListener(app.settings, self._router)
        self._listener.start_and_wait()
        self._connection: Connection | None = None
        self._channel: Any = None
        try:
            self._ensure_channel()
        except BaseException:
            self._listener.stop()
            raise

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
    ) -> AsyncResult[Any]:
        """Publish a request for ``task`` and return its handle at once.

        Raises:
            ClientClosed: The client is closed.
            BrokerError: The request could not be published.
        """
        if self._closed:
            raise ClientClosed("client is closed")
        request = self._builder.build(
            task,
            args,
            kwargs,
            reply_to=self._listener.reply_to,
            queue=queue or self.app.settings.default_queue,
            timeout=timeout,
        )
        call = PendingCall(request.id, task, request.deadline)
        self._router.add(call)  # before publishing: the reply can beat us back
        try:
            self._publish(request)
        except Exception as exc:
            self._router.discard(call.id)
            raise BrokerError(f"could not publish {task}: {exc}") from exc
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
            if self._connection is not None:
                self._connection.release()
                self._connection = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _publish(self, request: OutgoingRequest) -> None:
        with self._publish_lock:
            channel = self._ensure_channel()
            if request.queue not in self._declared:
                declare_task_queues(channel, self.app.settings, [request.queue])
                self._declared.add(request.queue)
            message = channel.prepare_message(
                request.body,
                content_type=request.content_type,
                content_encoding="binary",
                headers=request.headers,
                properties=request.properties,
            )
            try:
                channel.basic_publish(message, self._exchange_name, request.queue)
            except Exception:
                self._drop_connection()
                raise

    def _ensure_channel(self) -> Any:
        if self._closed:
            raise ClientClosed("client is closed")
        if self._channel is None:
            connection = connect(self.app.settings)
            channel = connection.channel()
            task_exchange(self.app.settings)(channel).declare()
            self._connection, self._channel = connection, channel
        return self._channel

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
