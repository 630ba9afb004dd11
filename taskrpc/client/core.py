"""BaseClient: what the sync and asyncio clients share (httpx-style parallel classes).

It owns the request builder, the reply router and the I/O thread; the subclasses only
differ in how a caller waits.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..exceptions import ClientClosed
from ..middleware import run_hooks
from ..policies import RetryPolicy
from .base import RequestBuilder
from .listener import ReplyListener
from .replies import PendingCall, ReplyRouter, ReplyStats

if TYPE_CHECKING:
    from ..app import App


class BaseClient:
    """Request building, publishing and reply matching, shared by both clients."""

    #: Whether the I/O thread reads every reply as it arrives (callers never read).
    _eager_replies = False

    def __init__(self, app: App) -> None:
        self.app = app
        self._builder = RequestBuilder(app)
        self._router = ReplyRouter(app.settings.duplicate_window)
        if app.middleware:
            self._router.on_drop = self._on_dropped_reply
        self._closed = False
        self._listener = ReplyListener(
            app.settings,
            self._router,
            connect_retry=app.connect_retry,
            publish_retry=app.publish_retry,
            resend=app.resend,
            direct=app.settings.direct_reply_to,
            eager=self._eager_replies,
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
        delay: float = 0.0,
        priority: int | None = None,
        fire: bool = False,
    ) -> PendingCall:
        """Build and register one request and queue it for publishing; return its call.

        Blocks only while the client is not connected (at most until the deadline).
        Failures to publish (unroutable, refused) settle the call and surface at ``get()``.
        """
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
            delay=delay,
            priority=priority,
            fire=fire,
        )
        hooks = self.app.middleware
        if hooks:
            run_hooks(hooks, "before_send", request)
        self._listener.wait_ready(request.deadline - time.monotonic())
        call = PendingCall(request.id, task, request.deadline)
        call.request, call.resendable, call.publish_retry = request, idempotent, retry
        self._router.add(call)  # before publishing: the reply can beat us back
        if hooks:
            call.add_done_callback(_after_call_hook(hooks, request))
        self._listener.submit(call)
        return call

    def _on_dropped_reply(self, kind: str) -> None:
        run_hooks(reversed(self.app.middleware), "after_dropped_reply", kind)

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.app._forget_client(self)
        self._listener.stop()
        self._router.fail_all(ClientClosed("client closed while the call was pending"))


def _after_call_hook(hooks: list[Any], request: Any) -> Any:
    """A done callback telling ``hooks`` how the call of ``request`` settled."""
    sent = time.monotonic()

    def after_call(call: PendingCall) -> None:
        reply, error = call.outcome()
        elapsed = time.monotonic() - sent
        run_hooks(reversed(hooks), "after_call", request, reply, error, elapsed, call.resends)

    return after_call
