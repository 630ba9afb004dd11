"""The asyncio client: the same abilities as :class:`~taskrpc.Client`, awaited.

It shares request building, publishing and reply matching with the sync client through
:class:`~taskrpc.client.core.BaseClient`; only the waiting differs. Nothing here blocks the
event loop: a request is encoded on the loop's thread and handed to the client's I/O
thread, which submits it to the state machine and publishes it (queue declarations
included); while the client is still connecting, a helper thread waits for the
connection. Replies are checked on the I/O thread and handed to the loop with
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..context import check_wait
from ..exceptions import TimeoutError
from ..middleware import run_hooks
from ..policies import RetryPolicy
from .core import BaseClient
from .outcomes import ResultLoader, no_result, read_reply, sent
from .replies import PendingCall

if TYPE_CHECKING:
    from ..app import App

R = TypeVar("R")


class AsyncCall(Generic[R]):
    """A call in flight, awaited from asyncio. ``await call`` is ``await call.get()``.

    Attributes:
        id: The request id (the AMQP ``correlation_id``).
        task: The task name.
    """

    def __init__(
        self,
        client: AsyncClient,
        call: PendingCall,
        load_result: ResultLoader | None,
        queue: str | None = None,
    ) -> None:
        self._client = client
        #: The queue the request was sent to.
        self.queue = queue
        self._call = call
        self._load_result = load_result
        self.id = call.id
        self.task = call.task

    def __repr__(self) -> str:
        return f"<AsyncCall {self.task} [{self.id}] {'ready' if self.ready() else 'pending'}>"

    def ready(self) -> bool:
        """Whether the reply (or a failure) has arrived; never blocks."""
        return self._call.done

    async def get(self, timeout: float | None = None, *, allow_nested: bool = False) -> R:
        """Wait for the reply and return the result; never waits past the call's deadline.

        Cancelling the awaiting task stops the wait; a reply that arrives later is
        dropped (and counted as unknown).

        Raises:
            TimeoutError: No reply in time (the call stays valid until its deadline).
            RemoteError: The task failed; a subclass tells why.
            ConfigurationError: Awaited inside a task, for a call to a queue that task's
                own worker serves; see :meth:`taskrpc.AsyncResult.get`.
        """
        call = self._call
        if not call.done:
            allowed = allow_nested or self._client.app.settings.allow_nested_waits
            check_wait(self.task, self.queue, allowed)
        if not call.done:
            left = call.deadline - time.monotonic()
            wait = left if timeout is None else min(timeout, left)
            try:
                await asyncio.wait_for(_settled(call), max(wait, 0.0))
            except asyncio.TimeoutError:
                if wait >= left:  # the deadline: say what held it up (a lock-free look)
                    hooks = self._client.app.middleware
                    if left > 0 and hooks:  # once: at the deadline
                        run_hooks(reversed(hooks), "after_timeout", self.task, self.id)
                    raise self._client._listener.timeout_error(call) from None
                dropped = f"; {call.rejected}" if call.rejected else ""
                raise TimeoutError(
                    f"no reply for {self.task} [{self.id}]: {timeout:g} s elapsed{dropped}"
                ) from None
            except asyncio.CancelledError:
                # Ends the call: a late reply counts as unknown, and a call the I/O
                # thread has not submitted yet is never sent.
                self._client._router.discard(call.id)
                call._settle(None, asyncio.CancelledError())
                raise
        decoded, error = call.outcome()
        if error is not None:
            raise error
        if decoded is None:  # fire-and-forget: confirmed, and no reply will come
            raise no_result(self.task, self.id)
        return read_reply(self._client.app, decoded, self._load_result)  # type: ignore[no-any-return]

    def __await__(self) -> Generator[Any, None, R]:
        return self.get().__await__()


def _settled(call: PendingCall) -> asyncio.Future[None]:
    """A future of the running loop, done when ``call`` settles (from any thread)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def wake(_: PendingCall) -> None:
        loop.call_soon_threadsafe(_resolve, future)

    call.add_done_callback(wake)
    return future


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncClient(BaseClient):
    """Sends requests and awaits their replies; usually reached as ``app.async_client``.

    Safe to use from several event loops and threads at once.

    Example:
        >>> result = await app.async_client.call("fib", 30)  # doctest: +SKIP
    """

    _eager_replies = True  # awaiting callers cannot read the socket themselves

    def __init__(self, app: App) -> None:
        super().__init__(app)
        self._connecting = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="taskrpc-connect"
        )

    async def send(
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
        serializer: str | None = None,
        delay: float = 0.0,
        priority: int | None = None,
        fire: bool = False,
    ) -> AsyncCall[Any]:
        """Send a request and return its handle.

        Takes the same parameters as :meth:`taskrpc.Client.send`.
        """
        call = self._build_call(
            task,
            args,
            kwargs,
            timeout=timeout,
            queue=queue,
            retry=retry,
            idempotent=idempotent,
            serializer=serializer,
            delay=delay,
            priority=priority,
            fire=fire,
        )
        await self._hand_over(call)
        return AsyncCall(self, call, load_result, queue or self.app.settings.default_queue)

    async def _hand_over(self, call: PendingCall) -> None:
        """Give ``call`` to the I/O thread, which submits and publishes it."""
        listener = self._listener
        if not listener.connected:
            # Wait for the first connection (or its failure) off the loop's thread, so
            # that an unreachable broker raises BrokerError here, as with the sync client.
            wait = functools.partial(listener.wait_ready, call.deadline - time.monotonic())
            await asyncio.get_running_loop().run_in_executor(self._connecting, wait)
        listener.hand_over(call)

    async def publish(
        self,
        task: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        serializer: str | None = None,
        delay: float = 0.0,
        priority: int | None = None,
    ) -> str:
        """Send a fire-and-forget request; see :meth:`taskrpc.Client.publish`."""
        call = self._build_call(
            task,
            args,
            kwargs,
            timeout=timeout,
            queue=queue,
            retry=retry,
            idempotent=False,
            serializer=serializer,
            delay=delay,
            priority=priority,
            fire=True,
        )
        await self._hand_over(call)
        left = max(0.0, call.deadline - time.monotonic())
        try:
            await asyncio.wait_for(_settled(call), left)
        except asyncio.TimeoutError:
            pass
        return sent(call, call.done)

    async def call(self, task: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Send a request and await its result (plain JSON data)."""
        return await (await self.send(task, args, kwargs, timeout=timeout))

    async def aclose(self) -> None:
        """Close the client; pending calls fail with :class:`~taskrpc.ClientClosed`."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """Close the client from synchronous code."""
        self._shutdown()
        self._connecting.shutdown(wait=False)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
