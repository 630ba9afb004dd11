"""The worker: connect, serve the app's queues through a pool, shut down cleanly."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..context import add_serving, remove_serving
from ..exceptions import AuthenticationFailed, BrokerError, ConfigurationError
from ..middleware import Middleware, run_hooks
from ..queues import explain_refusal
from ..transport import Transport, connect
from ..transport.nodes import BrokerNodes
from .consumer import ConsumeLoop
from .executor import Job, execute
from .limits import time_limits
from .pools import POOLS, Pool, make_pool
from .recent import RecentReplies
from .rejects import Rejections

if TYPE_CHECKING:
    from ..app import App

__all__ = ["POOLS", "Job", "Pool", "Worker", "execute"]

logger = logging.getLogger("taskrpc.worker")


class Worker:
    """Serves an app's tasks from its queues until stopped.

    Parameters:
        app: The app whose tasks to serve.
        queues: Queues to consume; defaults to every queue the app's tasks use.
        pool: ``"threads"`` (default), ``"processes"`` or ``"solo"``.
        concurrency: Jobs run at once; defaults to 1 for solo, else 4 (threads) or the
            number of CPUs (processes).
        prefetch: Unacknowledged requests held at once; defaults to
            ``concurrency * settings.prefetch_multiplier``.
        middleware: Hooks for this worker only, run after the app's own (for example
            :class:`~taskrpc.metrics.WorkerMetrics`).
        control: Answer the control plane's broadcasts (``taskrpc inspect``, revocations)
            on a connection of its own; ``taskrpc worker`` does unless ``--no-control``.

    Example:
        >>> worker = Worker(app, pool="threads", concurrency=8)  # doctest: +SKIP
        >>> worker.run()  # blocks until stopped  # doctest: +SKIP
    """

    def __init__(
        self,
        app: App,
        *,
        queues: list[str] | None = None,
        pool: str = "threads",
        concurrency: int | None = None,
        prefetch: int | None = None,
        middleware: Sequence[Middleware] = (),
        control: bool = False,
    ) -> None:
        if pool not in POOLS:
            raise ConfigurationError(f"unknown pool {pool!r} (choose from {', '.join(POOLS)})")
        self.app = app
        self.queues = list(queues or app.queues)
        self.pool_kind = pool
        self.concurrency = concurrency or _default_concurrency(pool)
        self.prefetch = prefetch or self.concurrency * app.settings.prefetch_multiplier
        if self.prefetch < 1:
            raise ConfigurationError(f"prefetch must be at least 1, got {self.prefetch}")
        self._check_time_limits()
        self.pool: Pool | None = None
        #: Set once the worker consumes its queues.
        self.ready = threading.Event()
        self._loop: ConsumeLoop | None = None
        self._recent = RecentReplies()
        #: Deliveries rejected without requeue, by reason (see ``taskrpc.worker.rejects``).
        self.rejections = Rejections()
        self._stopping = False
        self._stop_event = threading.Event()
        #: ``time.time()`` when :meth:`run` started, and whether it is connected now.
        self.started_at: float | None = None
        self.connected = False
        #: The hooks of this worker's loop (the app's middleware, then its own).
        self.middleware: list[Middleware] = [*app.middleware, *middleware]
        self._control_enabled = control

    def __repr__(self) -> str:
        return (
            f"<Worker queues={self.queues} pool={self.pool_kind} "
            f"concurrency={self.concurrency} broker={self.app.settings.safe_broker_url!r}>"
        )

    def _check_time_limits(self) -> None:
        ceiling = self.app.settings.broker_consumer_timeout
        for task in self.app.tasks.values():
            soft, hard = time_limits(self.app, task.name)
            longest = hard or soft
            if longest is not None and longest >= ceiling:
                raise ConfigurationError(
                    f"task {task.name}: a time limit of {longest:g} s is not below the broker's "
                    f"consumer_timeout of {ceiling:g} s; the broker would close the channel "
                    "first (set TASKRPC_BROKER_CONSUMER_TIMEOUT to the broker's real value)"
                )
            if hard is not None and self.pool_kind != "processes":
                logger.warning(
                    "task %s has a hard time limit, which only the processes pool enforces "
                    "(threads cannot be killed)",
                    task.name,
                )
            if soft is not None and self.pool_kind == "threads":
                logger.warning(
                    "task %s has a soft time limit, which the threads pool does not enforce "
                    "(the alarm signal reaches only the main thread); use the processes or "
                    "solo pool for it",
                    task.name,
                )

    def run(self) -> None:
        """Serve until :meth:`stop`; then finish and ack the requests in hand and return.

        Raises:
            BrokerError: The broker could not be reached at start.
        """
        add_serving(self.queues)  # before the pool forks: its children see it too
        try:
            self.pool = make_pool(self.pool_kind, self.app, self.concurrency)
        except BaseException:
            remove_serving(self.queues)
            raise
        self.started_at = time.time()
        control = self._start_control()
        run_hooks(self.middleware, "after_worker_boot", self)
        try:
            self._serve_with_reconnect()
        finally:
            run_hooks(reversed(self.middleware), "before_worker_shutdown", self)
            if control is not None:
                control.stop()
            self.pool.shutdown(wait=True)
            remove_serving(self.queues)
            logger.info("worker stopped")

    @property
    def busy(self) -> int:
        """Requests taken and not yet answered (pool slots in use)."""
        loop = self._loop
        return 0 if loop is None else loop.in_flight

    def _start_control(self) -> Any:
        if not self._control_enabled:
            return None
        from ..control.server import ControlServer

        server = ControlServer(self)
        self.middleware.append(server.observer)
        server.start()
        return server

    def stop(self) -> None:
        """Ask the worker to stop gracefully. Safe from signal handlers and other threads."""
        self._stopping = True
        self._stop_event.set()
        loop = self._loop
        if loop is not None:
            loop.stop()

    def kill_pool(self) -> None:
        """Kill pool children at once (for a hard exit); their requests will be redelivered."""
        if self.pool is not None and hasattr(self.pool, "kill_children"):
            self.pool.kill_children()

    def start_in_thread(self, timeout: float = 10.0) -> threading.Thread:
        """Run the worker in a daemon thread; return once it consumes (tests, demos).

        Raises:
            BrokerError: It did not start within ``timeout``.
        """
        errors: list[BaseException] = []

        def target() -> None:
            try:
                self.run()
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                self.ready.set()

        thread = threading.Thread(target=target, name="taskrpc-worker", daemon=True)
        thread.start()
        if not self.ready.wait(timeout) or errors:
            self.stop()
            raise errors[0] if errors else BrokerError("worker did not start in time")
        return thread

    def _serve_with_reconnect(self) -> None:
        """Serve; after a lost connection, reconnect with backoff until stopped.

        The first connection follows ``app.connect_retry`` and raises when it runs out;
        later ones retry forever (a worker outlives broker restarts), backing off to the
        policy's ``max_delay`` between attempts, never busy-looping.
        """
        policy = self.app.connect_retry
        settings = self.app.settings
        nodes = BrokerNodes(settings.broker_url, settings.broker_failover_strategy)
        attempt, connected_once = 0, False
        while not self._stopping:
            try:
                connection = connect(settings, nodes)
            except AuthenticationFailed:
                raise  # a wrong user or password: retrying cannot fix it
            except BrokerError as exc:
                attempt += 1
                if not connected_once and attempt > policy.max_retries:
                    raise
                logger.warning("%s; retrying (attempt %d)", exc, attempt)
                self._stop_event.wait(policy.delay(attempt))
                continue
            attempt, connected_once = 0, True
            try:
                self._serve(connection)
                return
            except connection.refusal_errors as exc:
                hint = explain_refusal(str(exc)) or (
                    "is a queue declared with other arguments, or a permission missing?"
                )
                raise ConfigurationError(
                    f"the broker refused the worker's setup ({exc}); {hint}"
                ) from exc
            except connection.recoverable_errors as exc:
                self.connected = False
                run_hooks(reversed(self.middleware), "after_connection_lost", self, exc)
                logger.warning(
                    "lost the broker connection (%s: %s); unacked requests will be redelivered",
                    type(exc).__name__,
                    exc,
                )
                nodes.lost()
                attempt = 1
                self._stop_event.wait(policy.delay(attempt))
            finally:
                self._loop = None
                connection.close()

    def _serve(self, connection: Transport) -> None:
        assert self.pool is not None
        prefetch = self.prefetch
        if getattr(self.pool, "held", None) is not None:  # rate limits hold requests back
            prefetch += self.app.settings.rate_limit_headroom
        self._loop = loop = ConsumeLoop(
            self.app,
            connection,
            self.pool,
            self.queues,
            prefetch,
            self._recent,
            self.rejections,
        )
        loop.hooks = self.middleware
        if self._stopping:
            loop.stop()
        self.connected = True
        run_hooks(self.middleware, "after_connect", self)
        logger.info("%r ready", self)
        self.ready.set()
        loop.run()


def _default_concurrency(pool: str) -> int:
    import os

    if pool == "solo":
        return 1
    if pool == "processes":
        return os.cpu_count() or 1
    return 4
