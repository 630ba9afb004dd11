"""AsyncResult: the handle a call returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..context import check_wait
from ..exceptions import TimeoutError
from ..middleware import run_hooks
from .outcomes import ResultLoader, no_result, read_reply
from .replies import PendingCall

if TYPE_CHECKING:
    from ..app import App

R = TypeVar("R")

_UNSET: Any = object()


class AsyncResult(Generic[R]):
    """A call in flight. Safe to share between threads.

    Attributes:
        id: The request id (also the AMQP ``correlation_id``).
        task: The task name.
    """

    def __init__(
        self,
        app: App,
        call: PendingCall,
        load_result: ResultLoader | None,
        waiter: Callable[[PendingCall, float], bool] | None = None,
        timeout_error: Callable[[PendingCall], TimeoutError] | None = None,
        queue: str | None = None,
    ) -> None:
        self._app = app
        self._call = call
        self._waiter = waiter
        self._timeout_error = timeout_error
        self._load_result = load_result
        self._value: Any = _UNSET
        self._error: BaseException | None = None
        self.id = call.id
        self.task = call.task
        #: The queue the request was sent to.
        self.queue = queue

    def __repr__(self) -> str:
        state = "ready" if self._call.done else "pending"
        return f"<AsyncResult {self.task} [{self.id}] {state}>"

    def ready(self) -> bool:
        """Whether the reply (or a failure) has arrived; never blocks.

        It reads what the broker has already sent, so polling it needs no other thread.
        """
        return self._call.done or self._wait_for_call(0.0)

    def get(self, timeout: float | None = None, *, allow_nested: bool = False) -> R:
        """Wait for the reply and return the result.

        Parameters:
            timeout: Seconds to wait at most. ``None`` waits until the call's own deadline
                (the ``timeout`` it was sent with). It never waits past that deadline.

        Raises:
            TimeoutError: No reply in time. The call stays valid: ``get`` may be called again
                until the call's deadline.
            RemoteError: The task failed; a subclass tells why (e.g. ``InvalidArguments``).
            ConnectionLost, ClientClosed: The reply can no longer arrive.
            ConfigurationError: Called inside a task, for a call to a queue that task's
                own worker serves (it could deadlock); ``allow_nested=True`` (or
                ``Settings.allow_nested_waits``) allows it.
        """
        if self._value is _UNSET and self._error is None:
            if not self._call.done:
                allowed = allow_nested or self._app.settings.allow_nested_waits
                check_wait(self.task, self.queue, allowed)
            self._wait(timeout)
            self._settle()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[no-any-return]

    def _wait(self, timeout: float | None) -> None:
        left = self._call.deadline - time.monotonic()
        wait = left if timeout is None else min(timeout, left)
        if not self._wait_for_call(max(wait, 0.0)):
            if timeout is None or timeout >= left:  # the deadline: say what held it up
                if left > 0 and self._app.middleware:  # once: at the deadline
                    run_hooks(reversed(self._app.middleware), "after_timeout", self.task, self.id)
                if self._timeout_error is not None:
                    raise self._timeout_error(self._call)
                raise TimeoutError(f"no reply for {self.task} [{self.id}]: its deadline passed")
            dropped = f"; {self._call.rejected}" if self._call.rejected else ""
            raise TimeoutError(
                f"no reply for {self.task} [{self.id}]: {timeout:g} s elapsed{dropped}"
            )

    def _wait_for_call(self, timeout: float) -> bool:
        if self._waiter is None:
            return self._call.wait(timeout)
        return self._waiter(self._call, timeout)

    def _settle(self) -> None:
        decoded, error = self._call.outcome()
        if error is not None:
            self._error = error
            return
        if decoded is None:  # fire-and-forget: confirmed, and no reply will come
            self._error = no_result(self.task, self.id)
            return
        try:
            self._value = read_reply(self._app, decoded, self._load_result)
        except Exception as exc:
            self._error = exc
