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


class ReturnTracker:
    """Catches ``basic.return`` on one channel: a mandatory publish that found no queue.

    py-amqp delivers the return before the publish's confirm, so after a confirmed
    publish :attr:`reason` tells whether the message was returned.
    """

    def __init__(self, channel: Any) -> None:
        self.reason: str | None = None
        events = getattr(channel, "events", None)
        if events is not None:  # py-amqp; in-process transports never return messages
            events["basic_return"].add(self._on_return)

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        self.reason = str(exc)


def publish_request(
    channel: Any, exchange: str, request: OutgoingRequest, returns: ReturnTracker
) -> None:
    """Publish ``request`` (mandatory, confirmed if the channel is in confirm mode).

    Raises:
        Unroutable: The broker returned it: no queue is bound to its routing key.
    """
    message = channel.prepare_message(
        request.body,
        content_type=request.content_type,
        content_encoding=request.content_encoding,
        headers=request.headers,
        properties=request.properties,
    )
    returns.reason = None
    channel.basic_publish(
        message,
        exchange,
        request.queue,
        mandatory=True,
        confirm_timeout=max(request.deadline - time.monotonic(), 0.001),
    )
    if returns.reason is not None:
        raise Unroutable(
            f"no queue is bound for {request.task} on {request.queue!r} "
            f"({returns.reason}); was the queue deleted?"
        )


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
        self._returns: ReturnTracker | None = None
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
                assert self._returns is not None
                publish_request(channel, self.app.settings.exchange, request, self._returns)
            except Unroutable:
                self._declared.discard(request.queue)
                raise
            except ClientClosed:
                raise
            except Exception as exc:  # unconnected, unwritten or unconfirmed: safe to resend
                self._drop_connection()
                raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc

    def _ensure_channel(self) -> Any:
        if self._closed:
            raise ClientClosed("client is closed")
        if self._channel is None:
            connection = connect(self.app.settings, confirms=True)
            try:
                channel = connection.channel()
                task_exchange(self.app.settings)(channel).declare()
            except Exception:
                connection.release()
                raise
            self._connection, self._channel = connection, channel
            self._returns = ReturnTracker(channel)
        return self._channel

    def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._declared.clear()
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken; nothing to save
                pass
