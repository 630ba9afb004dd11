"""BaseClient: what the sync and asyncio clients share (httpx-style parallel classes).

It owns the request builder, the client state machine (with its reply router) and the
I/O thread that drives it; the subclasses only differ in how a caller submits and waits.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from ..exceptions import ClientClosed
from ..middleware import run_hooks
from ..policies import RetryPolicy
from .base import RequestBuilder
from .confirms import ConfirmTimer
from .listener import ReplyListener
from .machine import ClientMachine
from .outcomes import check_reply
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
        settings = app.settings
        self._router = ReplyRouter(
            settings.duplicate_window, check=functools.partial(check_reply, app)
        )
        if app.middleware:
            self._router.on_drop = self._on_dropped_reply
        self._machine = ClientMachine(
            self._router,
            exchange=settings.exchange,
            publish_retry=app.publish_retry,
            resend=app.resend,
            confirm_timer=ConfirmTimer.for_settings(settings),
        )
        self._closed = False
        self._listener = ReplyListener(
            settings,
            self._machine,
            connect_retry=app.connect_retry,
            direct=settings.direct_reply_to,
            eager=self._eager_replies,
        )
        self._listener.start()

    @property
    def stats(self) -> ReplyStats:
        """Counters of the replies this client dropped (unknown, duplicate, rejected)."""
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
    def rejected_replies(self) -> int:
        """Replies to a waiting call dropped because they failed verification or decoding."""
        return self._router.stats.rejected

    @property
    def pending(self) -> int:
        """Calls still waiting for a reply (whose handles are still referenced)."""
        return len(self._router)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _build_call(
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
        """Build one request (immutable from here on) and the call that waits for it."""
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
        call = PendingCall(request.id, task, request.deadline)
        call.request, call.resendable, call.publish_retry = request, idempotent, retry
        if hooks:
            call.add_done_callback(_after_call_hook(hooks, request))
        return call

    def _submit(self, task: str, args: Any, kwargs: Any, **options: Any) -> PendingCall:
        """Build one request and submit it; return its call.

        Waits for the connection (at most until the deadline) and publishes in the
        caller's thread when it can. Failures to publish (unroutable, refused,
        connection lost) settle the call and surface at ``get()``.
        """
        call = self._build_call(task, args, kwargs, **options)
        self._listener.wait_ready(call.deadline - time.monotonic())
        self._listener.submit(call)
        return call

    def _on_dropped_reply(self, kind: str) -> None:
        run_hooks(reversed(self.app.middleware), "after_dropped_reply", kind)

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.app._clients.forget(self)
        self._listener.stop()


def _after_call_hook(hooks: list[Any], request: Any) -> Any:
    """A done callback telling ``hooks`` how the call of ``request`` settled."""
    sent = time.monotonic()

    def after_call(call: PendingCall) -> None:
        reply, error = call.outcome()
        elapsed = time.monotonic() - sent
        run_hooks(reversed(hooks), "after_call", request, reply, error, elapsed, call.resends)

    return after_call
