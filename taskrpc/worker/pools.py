"""Execution pools: where a worker runs its jobs. One small class per kind.

A pool takes a :class:`~taskrpc.worker.executor.Job` and, later, calls ``done(outcome)``
from whatever thread it likes; the worker's loop publishes the reply, never the pool.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Protocol

from ..exceptions import ConfigurationError, WorkerLost
from ..messages import Outcome
from .executor import Job, error_outcome, execute

if TYPE_CHECKING:
    from ..app import App

logger = logging.getLogger("taskrpc.worker")

Done = Callable[[Outcome], None]


class Pool(Protocol):
    """What the worker's loop needs from a pool."""

    #: Jobs the pool runs at once; the loop never hands it more.
    size: int

    def submit(self, job: Job, done: Done) -> None:
        """Run ``job``; call ``done`` with its outcome exactly once."""
        ...

    def shutdown(self, wait: bool = True) -> None:
        """Finish (``wait=True``) or abandon running jobs and release resources."""
        ...


class SoloPool:
    """Runs each job inline, in the worker's own thread. No parallelism, least overhead."""

    size = 1

    def __init__(self, app: App, concurrency: int = 1) -> None:
        self._app = app

    def submit(self, job: Job, done: Done) -> None:
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


class ProcessPool:
    """Runs jobs in child processes: real parallelism for CPU-bound tasks.

    Children are forked with the app already loaded and ignore SIGINT and SIGTERM, so a
    Ctrl-C or a service manager's SIGTERM reaches only the worker, which then finishes the
    jobs in hand. If a child dies, its job is answered with :class:`~taskrpc.WorkerLost`
    and the pool is rebuilt.
    """

    def __init__(self, app: App, concurrency: int) -> None:
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ConfigurationError("the processes pool needs the 'fork' start method")
        self._app = app
        self.size = concurrency
        self._executor = self._new_executor()

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_child,
            initargs=(self._app,),
        )
        # Fork every child now, before the worker starts threads of its own.
        executor.submit(os.getpid).result()
        return executor

    def submit(self, job: Job, done: Done) -> None:
        try:
            future = self._executor.submit(_execute_in_child, job)
        except BrokenProcessPool:
            self._rebuild()
            future = self._executor.submit(_execute_in_child, job)
        future.add_done_callback(lambda f: done(_outcome_of(self._app, f)))

    def shutdown(self, wait: bool = True) -> None:
        if not wait:
            self.kill_children()
        self._executor.shutdown(wait=wait, cancel_futures=not wait)

    def kill_children(self) -> None:
        """SIGKILL every child at once (a hard stop)."""
        for process in list(getattr(self._executor, "_processes", {}).values()):
            if process.is_alive():
                process.kill()

    def _rebuild(self) -> None:
        logger.warning("a pool process died; starting a new pool")
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor()


#: The app a pool child serves, set once by ``_init_child`` in that child only.
_child_app: App | None = None


def _init_child(app: App) -> None:
    global _child_app
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    app._client = None  # the parent's sockets are not ours to use
    _child_app = app


def _die_with_parent() -> None:
    """On Linux, have the kernel SIGKILL this child when the worker dies (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: children exit when their pipe closes
        pass


def _execute_in_child(job: Job) -> Outcome:
    assert _child_app is not None, "pool child was not initialised"
    return execute(_child_app, job)


def _outcome_of(app: App, future: concurrent.futures.Future[Outcome]) -> Outcome:
    try:
        return future.result()
    except BrokenProcessPool:
        return error_outcome(app, WorkerLost("the pool process running the task died"))
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
    return factory(app, concurrency)
