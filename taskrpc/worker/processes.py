"""The processes pool: CPU parallelism, time limits, and children that can be killed.

Each child is a forked process with a pipe; a monitor thread in the worker hands jobs
out, collects outcomes, and watches every child. A child that dies, or overruns its
task's hard time limit (and is killed for it), costs only its own job, answered with
:class:`~taskrpc.WorkerLost` or :class:`~taskrpc.TimeLimitExceeded`; a fresh child takes
its place. (``concurrent.futures.ProcessPoolExecutor`` breaks the whole pool instead.)
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError, Revoked, TimeLimitExceeded, WorkerLost
from ..messages import Outcome
from .executor import Job, error_outcome
from .limits import on_soft_limit, run_with_soft_limit, time_limits

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..app import App

    Done = Callable[[Outcome], None]

logger = logging.getLogger("taskrpc.worker")


class _Child:
    """One pool process and the job it is running, if any."""

    def __init__(self, app: App, context: Any) -> None:
        parent_end, child_end = context.Pipe()
        self.process = context.Process(
            target=_child_main, args=(app, child_end), name="taskrpc-pool", daemon=True
        )
        self.process.start()
        child_end.close()
        self.conn: Connection = parent_end
        self.job: Job | None = None
        self.done: Done | None = None
        self.hard_deadline: float | None = None

    def start(self, job: Job, done: Done, hard_limit: float | None) -> None:
        self.job, self.done = job, done
        self.hard_deadline = time.monotonic() + hard_limit if hard_limit else None
        self.conn.send(job)

    def finish(self) -> Done | None:
        done, self.job, self.done, self.hard_deadline = self.done, None, None, None
        return done


class ProcessPool:
    """Runs jobs in child processes; see the module docstring."""

    def __init__(self, app: App, concurrency: int) -> None:
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ConfigurationError("the processes pool needs the 'fork' start method")
        self._app = app
        self._context = multiprocessing.get_context("fork")
        self.size = concurrency
        self._lock = threading.Lock()
        self._backlog: collections.deque[tuple[Job, Done]] = collections.deque()
        self._closing = False
        self._wake_r, self._wake_w = socket.socketpair()
        # Fork every child now, before the worker starts threads of its own.
        self._children = [_Child(app, self._context) for _ in range(concurrency)]
        self._monitor = threading.Thread(target=self._watch, name="taskrpc-pool", daemon=True)
        self._monitor.start()

    def submit(self, job: Job, done: Done) -> None:
        with self._lock:
            self._backlog.append((job, done))
            self._dispatch()

    def shutdown(self, wait: bool = True) -> None:
        """Finish running jobs (``wait``) or kill every child at once, then stop the children."""
        if not wait:
            self.kill_children()
        self._closing = True
        self._wake()
        self._monitor.join(timeout=None if wait else 5)
        for child in self._children:
            try:
                child.conn.send(None)
            except OSError:
                pass
            child.process.join(timeout=5)
            if child.process.is_alive():
                child.process.kill()

    def kill_children(self) -> None:
        """SIGKILL every child at once (a hard stop)."""
        for child in self._children:
            if child.process.is_alive():
                child.process.kill()

    def interrupt(self, request_id: str) -> bool:
        """Kill the child running ``request_id`` (revoked); its caller gets
        :class:`~taskrpc.Revoked`. Returns whether one was running."""
        with self._lock:
            for index, child in enumerate(self._children):
                if child.job is not None and child.job.request_id == request_id:
                    child.process.kill()
                    child.process.join()
                    error = Revoked(
                        f"request {request_id} was revoked while it ran; its process was killed",
                        type_name="Revoked",
                    )
                    self._replace(index, error)
                    self._dispatch()
                    return True
        return False

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _dispatch(self) -> None:  # with the lock held
        started = False
        for child in self._children:
            if not self._backlog:
                break
            if child.job is None and child.process.is_alive():
                job, done = self._backlog.popleft()
                child.start(job, done, time_limits(self._app, job.task)[1])
                started = True
        if started:
            self._wake()  # the monitor must watch the busy child and its deadline

    def _watch(self) -> None:
        while True:
            with self._lock:
                busy = [c for c in self._children if c.job is not None]
                if self._closing and not busy and not self._backlog:
                    return
                waitables: list[Any] = [self._wake_r]
                waitables += [c.conn for c in busy] + [c.process.sentinel for c in self._children]
                deadlines = [c.hard_deadline for c in busy if c.hard_deadline is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = wait(waitables, timeout)
            if self._wake_r in ready:
                self._wake_r.recv(4096)
            with self._lock:
                self._collect(set(ready))
                self._dispatch()

    def _collect(self, ready: set[Any]) -> None:  # with the lock held
        now = time.monotonic()
        for index, child in enumerate(self._children):
            if child.job is not None and child.conn in ready:
                try:
                    outcome = child.conn.recv()
                except (EOFError, OSError):
                    outcome = None  # died while answering: handled below as lost
                if outcome is not None:
                    self._answer(child, outcome)
                    continue
            if not child.process.is_alive() or child.process.sentinel in ready:
                died = WorkerLost(_how_it_died(child.process), type_name="WorkerLost")
                self._replace(index, died)
            elif child.hard_deadline is not None and now >= child.hard_deadline:
                child.process.kill()
                child.process.join()
                assert child.job is not None
                limit = time_limits(self._app, child.job.task)[1]
                self._replace(
                    index,
                    TimeLimitExceeded(
                        f"{child.job.task} ran past its hard time limit of {limit:g} s; killed",
                        type_name="TimeLimitExceeded",
                    ),
                )

    def _answer(self, child: _Child, outcome: Outcome) -> None:
        done = child.finish()
        if done is not None:
            done(outcome)

    def _replace(self, index: int, error: WorkerLost | TimeLimitExceeded | Revoked) -> None:
        child = self._children[index]
        job = child.job
        done = child.finish()
        child.conn.close()
        if job is not None:
            logger.warning(
                "pool process %s lost %s [%s]: %s",
                child.process.pid,
                job.task,
                job.request_id,
                error.message,
            )
        if done is not None and job is not None:
            done(error_outcome(self._app, error, job.content_type))
        if not self._closing:
            self._children[index] = _Child(self._app, self._context)


def _how_it_died(process: Any) -> str:
    """Why a pool process is gone, with its exit code or the signal that killed it."""
    process.join(timeout=1)
    code = process.exitcode
    if code is None:
        return f"the pool process {process.pid} running the task died"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"the pool process {process.pid} running the task was killed by {name} ({-code})"
    return f"the pool process {process.pid} running the task exited with code {code}"


def _child_main(app: App, conn: Connection) -> None:
    """A pool process: run jobs from the pipe until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, on_soft_limit)
    _die_with_parent()
    app._clients.drop()  # the parent's sockets are not ours to use
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(run_with_soft_limit(app, job))


def _die_with_parent() -> None:
    """On Linux, have the kernel SIGKILL this child when the worker dies (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: children exit when their pipe closes
        pass
