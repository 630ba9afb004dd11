"""Execution pools: where a worker runs its jobs. One small class per kind.

A pool takes a :class:`~taskrpc.worker.executor.Job` and, later, calls ``done(outcome)``
from whatever thread it likes; the worker's loop publishes the reply, never the pool.
"""

from __future__ import annotations

import concurrent.futures
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..exceptions import ConfigurationError, WorkerLost
from ..messages import Outcome
from .executor import Job, error_outcome, execute
from .limits import on_soft_limit, run_with_soft_limit
from .processes import ProcessPool

if TYPE_CHECKING:
    from ..app import App

logger = logging.getLogger("taskrpc.worker")

Done = Callable[[Outcome], None]


class Pool(Protocol):
    """What the worker's loop needs from a pool."""

    @property
    def size(self) -> int:
        """Jobs the pool runs at once; the loop never hands it more."""
        ...

    def submit(self, job: Job, done: Done) -> None:
        """Run ``job``; call ``done`` with its outcome exactly once."""
        ...

    def shutdown(self, wait: bool = True) -> None:
        """Finish (``wait=True``) or abandon running jobs and release resources."""
        ...


class SoloPool:
    """Runs each job inline, in the worker's own thread. No parallelism, least overhead.

    While a job runs, a keeper thread serves the connection in its place (heartbeats,
    reading what arrives; see :mod:`taskrpc.worker.keeper`). Soft time limits apply when
    the worker runs in the main thread (SIGALRM); a hard limit cannot be enforced without
    killing the worker itself.
    """

    size = 1
    #: Jobs run in the caller's thread, inside ``submit``.
    inline = True

    def __init__(self, app: App, concurrency: int = 1) -> None:
        self._app = app
        self._alarms = threading.current_thread() is threading.main_thread()
        if self._alarms:
            signal.signal(signal.SIGALRM, on_soft_limit)

    def submit(self, job: Job, done: Done) -> None:
        if self._alarms:
            done(run_with_soft_limit(self._app, job))
        else:
            done(execute(self._app, job))

    def shutdown(self, wait: bool = True) -> None:
        pass


class ThreadPool:
    """Runs jobs in threads: right for I/O-bound tasks; the GIL serialises CPU-bound ones.

    Threads cannot be killed, so a task stuck forever holds its thread forever.
    """

    def __init__(self, app: App, concurrency: int) -> None:
        self._app = app
        self.size = concurrency
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="taskrpc-task"
        )

    def submit(self, job: Job, done: Done) -> None:
        future = self._executor.submit(execute, self._app, job)
        future.add_done_callback(lambda f: done(_outcome_of(self._app, f)))

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=not wait)


def _outcome_of(app: App, future: concurrent.futures.Future[Outcome]) -> Outcome:
    try:
        return future.result()
    except Exception as exc:  # execute() catches everything; this is a pool failure
        return error_outcome(app, WorkerLost(f"pool failure: {exc}", type_name=type(exc).__name__))


#: Pool names accepted by ``taskrpc worker --pool``.
POOLS: dict[str, Callable[[App, int], Pool]] = {
    "solo": SoloPool,
    "threads": ThreadPool,
    "processes": ProcessPool,
}


def make_pool(kind: str, app: App, concurrency: int) -> Pool:
    """Build the pool named ``kind``.

    Raises:
        ConfigurationError: Unknown kind or a concurrency below 1.
    """
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
    try:
        factory = POOLS[kind]
    except KeyError:
        raise ConfigurationError(
            f"unknown pool {kind!r} (choose from {', '.join(POOLS)})"
        ) from None
    from .ratelimit import rate_limited

    return rate_limited(app, factory(app, concurrency), inline=kind == "solo")
