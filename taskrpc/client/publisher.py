"""Publishing requests: one connection, confirms and mandatory, resends that are safe."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from kombu import Connection

from ..exceptions import BrokerError, ClientClosed, ConnectionLost, Unroutable
from ..policies import RetryPolicy, retry_call
from ..transport import connect, declare_task_queues, task_exchange
from .base import OutgoingRequest

if TYPE_CHECKING:
    from ..app import App


class Publisher:
    """Publishes requests on a connection of its own; thread-safe (one publish at a time).

    Every publish uses publisher confirms and the mandatory flag: it returns once the
    broker has queued the request, raises :class:`Unroutable` at once if no queue is bound,
    and is retried (same request id) only when the request provably reached no queue:
    the connection failed before or during the publish, or the broker did not confirm it.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._declared: set[str] = set()
        self._connection: Connection | None = None
        self._channel: Any = None
        self._returned: str | None = None
        self._closed = False

    def publish(self, request: OutgoingRequest, policy: RetryPolicy) -> None:
        """Publish ``request``, retrying safe failures as ``policy`` allows before its deadline.

        Raises:
            Unroutable: No queue is bound for it.
            BrokerError: It could not be published before the retries or the deadline ran out.
            ClientClosed: The publisher is closed.
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

    def close(self) -> None:
        """Close the connection; later publishes raise :class:`ClientClosed`."""
        with self._lock:
            self._closed = True
            self._drop_connection()

    def _publish_once(self, request: OutgoingRequest) -> None:
        with self._lock:
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
                    message,
                    self.app.settings.exchange,
                    request.queue,
                    mandatory=True,
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
                    f"({self._returned}); was the queue deleted?"
                )

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
