"""The thread-safe, blocking client: callers wait on threading events; one I/O thread
(:mod:`taskrpc.client.listener`) does all the talking to the broker."""

from __future__ import annotations

import time
from typing import Any

from ..policies import RetryPolicy
from .core import BaseClient
from .outcomes import ResultLoader, sent
from .result import AsyncResult


class Client(BaseClient):
    """Sends requests and matches their replies. Usually reached as ``app.client``.

    Many calls may be in flight at once, from any number of threads. Creating a client
    does not block: it connects in the background, and each call waits for the
    connection at most until its own deadline.

    Example:
        >>> client = Client(app)  # doctest: +SKIP
        >>> client.send("taskrpc.fibonacci.fib", [10]).get()  # doctest: +SKIP
        55
    """

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
        serializer: str | None = None,
        delay: float = 0.0,
        priority: int | None = None,
        fire: bool = False,
    ) -> AsyncResult[Any]:
        """Publish a request for ``task`` and return its handle once the broker has it.

        Parameters:
            task: The task's registered name.
            args: Positional arguments.
            kwargs: Keyword arguments.
            timeout: Seconds the call may take; ``None`` uses the app's default.
            queue: Queue to route to; ``None`` uses the app's default queue.
            load_result: Turns the JSON result into the caller's type (e.g. a model).
            retry: Policy for publishing again after a safe failure (``None``: the app's
                ``publish_retry``).
            idempotent: Also resend, keeping the request id, if the reply queue is lost.
            serializer: Serializer of this request (and so of its reply); ``None``: the
                task's, else the app's.
            delay: Seconds before the request reaches its queue (held by the broker);
                ``timeout`` counts from then.
            priority: The AMQP priority, on queues declared with ``max_priority``.
            fire: Ask for no reply (see :meth:`publish`); the handle is ready once the
                broker has the request, and its ``get()`` raises.

        Raises:
            ClientClosed: The client is closed.
            BrokerError: No connection before the call's deadline, or the publish failed.
            Unroutable: No queue is bound for the request.
        """
        call = self._submit(
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
        listener = self._listener
        return AsyncResult(
            self.app,
            call,
            load_result,
            waiter=listener.wait,
            timeout_error=listener.timeout_error,
            queue=queue or self.app.settings.default_queue,
        )

    def publish(
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
        """Send a fire-and-forget request: no reply is asked for, none will come.

        Returns once the broker has confirmed the request (a queue has it), with its id.
        Without a ``timeout`` the request never expires; the worker logs its failure.

        Raises:
            Unroutable: No queue is bound for the request.
            BrokerError: The broker refused it, or no connection in time.
            TimeoutError: No confirmation within ``timeout`` (else the app's default).
            NoQuorum: No confirmation within ``publish_confirm_timeout`` from a quorum
                queue (it may have lost its majority); the request may still run.
        """
        call = self._submit(
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
        left = max(0.0, call.deadline - time.monotonic())
        return sent(call, self._listener.wait(call, left))  # reads the confirm itself

    def call(self, task: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Send a request and wait for its result (plain JSON data)."""
        return self.send(task, args, kwargs, timeout=timeout).get()

    def close(self) -> None:
        """Stop listening, fail every pending call with ``ClientClosed``, close connections."""
        self._shutdown()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:
                pass
