"""BaseClient: what the sync and asyncio clients share (httpx-style parallel classes).

It owns the request builder, the reply router, the publisher and the reply listener;
the subclasses only differ in how a caller waits.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from ..exceptions import ClientClosed, ConnectionLost
from ..policies import RetryPolicy
from .base import OutgoingRequest, RequestBuilder
from .listener import ReplyListener
from .publisher import Publisher
from .replies import PendingCall, ReplyRouter, ReplyStats

if TYPE_CHECKING:
    from ..app import App


class BaseClient:
    """Request building, publishing and reply matching, shared by both clients."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._builder = RequestBuilder(app)
        self._router = ReplyRouter(app.settings.duplicate_window)
        self._publisher = Publisher(app)
        self._closed = False
        self._direct = app.settings.direct_reply_to
        self._listener = ReplyListener(
            app.settings,
            self._router,
            app.connect_retry,
            on_resend=self._resend,
            direct=self._direct,
        )
        #: Where requests are published: the listener's own channel for direct reply-to.
        self._publish = self._listener.publish if self._direct else self._publisher.publish
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

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _submit(
        self,
        task: str,
        args: tuple[Any, ...] | list[Any],
        kwargs: dict[str, Any] | None,
        *,
        timeout: float | None,
        queue: str | None,
        retry: RetryPolicy | None,
        idempotent: bool,
        serializer: str | None = None,
    ) -> PendingCall:
        """Build, register and publish one request (blocking); return its pending call."""
        if self._closed:
            raise ClientClosed("client is closed")
        request = self._builder.build(
            task,
            args,
            kwargs,
            reply_to=None,
            queue=queue or self.app.settings.default_queue,
            timeout=timeout,
            serializer=serializer,
        )
        request.properties["reply_to"] = self._listener.wait_ready(
            request.deadline - time.monotonic()
        )
        call = PendingCall(request.id, task, request.deadline)
        if idempotent:
            call.request, call.resendable = request, True
        self._router.add(call)  # before publishing: the reply can beat us back
        try:
            self._publish(request, retry or self.app.publish_retry)
        except BaseException:
            self._router.discard(call.id)
            raise
        return call

    def _resend(self, calls: list[PendingCall]) -> None:
        """Send idempotent calls again, same ids, to the new reply queue (listener thread)."""
        for call in calls:
            left = call.deadline - time.monotonic()
            if left <= 0:
                continue  # its wait times out on its own
            call.resends += 1
            if call.resends > self.app.resend.max_retries:
                self._router.fail(call, ConnectionLost("reply queue lost; resends exhausted"))
                continue
            request: OutgoingRequest = call.request
            properties = {
                **request.properties,
                "reply_to": self._listener.reply_to,
                "expiration": str(max(1, int(left * 1000))),
            }
            try:
                self._publish(
                    dataclasses.replace(request, properties=properties), self.app.publish_retry
                )
            except Exception as exc:
                self._router.fail(call, exc)

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._listener.stop()
        self._router.fail_all(ClientClosed("client closed while the call was pending"))
        self._publisher.close()
