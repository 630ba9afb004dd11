"""The server side of a benchmark run: a taskrpc worker and the baseline server.

Both run in their own process, apart from the client: the taskrpc worker is the real
``taskrpc worker`` command, the baseline server a ``multiprocessing`` child. Neither sees
the terminal's Ctrl-C; :meth:`Servers.stop` shuts them down and deletes their queues.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from multiprocessing.synchronize import Event

from kombu import Connection

from .baseline import serve
from .drivers import BenchmarkError

#: Seconds a server gets to start, and to stop before it is killed.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

#: ``module:attribute`` of the app the benchmark's worker serves.
WORKER_APP = "taskrpc.benchmarking.tasks:app"


def _serve_baseline(url: str, queue: str, ready: Event, stop: Event, queue_type: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through ``stop``
    serve(url, queue, ready, stop, queue_type)


class Servers:
    """Starts, watches and stops both servers, each on a queue of its own.

    Parameters:
        url: Broker URL.
        pool, concurrency, prefetch: The taskrpc worker's options (``None``: its defaults).
        baseline: Also run the baseline server (``False``: the taskrpc worker alone).
        queue_type: ``"classic"`` or ``"quorum"``, for both servers' queues (the worker's
            with no dead-letter queue, so that the run leaves nothing behind).
        worker_args: More ``taskrpc worker`` options (e.g. ``--metrics-port``).
    """

    def __init__(
        self,
        url: str,
        *,
        pool: str,
        concurrency: int | None,
        prefetch: int | None,
        baseline: bool = True,
        queue_type: str = "classic",
        worker_args: tuple[str, ...] = (),
    ) -> None:
        token = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.url = url
        self.baseline_queue = f"taskrpc.bench.baseline.{token}"
        self.taskrpc_queue = f"taskrpc.bench.taskrpc.{token}"
        self._worker_args = ["-P", pool]
        if concurrency is not None:
            self._worker_args += ["-c", str(concurrency)]
        if prefetch is not None:
            self._worker_args += ["--prefetch", str(prefetch)]
        self._worker_args += worker_args
        context = multiprocessing.get_context("spawn")  # no inherited sockets or threads
        self._ready, self._stop = context.Event(), context.Event()
        self._baseline = context.Process(
            target=_serve_baseline,
            args=(url, self.baseline_queue, self._ready, self._stop, queue_type),
            name="taskrpc-bench-baseline",
            daemon=True,
        )
        self._with_baseline = baseline
        self._worker_env = {
            **os.environ,
            "TASKRPC_QUEUE_TYPE": queue_type,
            "TASKRPC_DEAD_LETTER_QUEUE": "",
        }
        self._worker: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start both; return once the baseline server consumes.

        The worker is known to be up only once it answers (see the taskrpc driver).

        Raises:
            BenchmarkError: The baseline server did not start.
        """
        command = [
            sys.executable,
            "-m",
            "taskrpc",
            "worker",
            WORKER_APP,
            "--broker",
            self.url,
            "-Q",
            self.taskrpc_queue,
            "-l",
            "error",
            *self._worker_args,
        ]
        self._worker = subprocess.Popen(command, start_new_session=True, env=self._worker_env)
        if not self._with_baseline:
            self.check()
            return
        self._baseline.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready.wait(0.1):
            if not self._baseline.is_alive() or time.monotonic() > deadline:
                raise BenchmarkError("the baseline server did not start")
        self.check()

    @property
    def worker_pid(self) -> int | None:
        """The taskrpc worker's process id, once started."""
        return None if self._worker is None else self._worker.pid

    def check(self) -> None:
        """Raise :class:`BenchmarkError` if either server has exited."""
        if self._worker is not None and self._worker.poll() is not None:
            raise BenchmarkError(f"the taskrpc worker exited with code {self._worker.returncode}")
        if self._baseline.pid is not None and not self._baseline.is_alive():
            raise BenchmarkError("the baseline server exited")

    def stop(self) -> None:
        """Stop both servers (gracefully, then by force) and delete their queues."""
        previous = _ignore_sigint()
        try:
            self._stop.set()
            if self._worker is not None and self._worker.poll() is None:
                self._worker.terminate()  # SIGTERM: a graceful stop
            if self._baseline.pid is not None:
                self._baseline.join(STOP_TIMEOUT)
                if self._baseline.is_alive():
                    self._baseline.kill()
                    self._baseline.join()
            if self._worker is not None:
                try:
                    self._worker.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._worker.kill()
                    self._worker.wait()
            self._delete_queues()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def __enter__(self) -> Servers:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _delete_queues(self) -> None:
        try:
            with Connection(self.url, connect_timeout=2) as connection:
                channel = connection.default_channel
                for name in (self.taskrpc_queue, self.baseline_queue):
                    channel.queue_delete(name)  # a missing queue is not an error
        except Exception as exc:  # the broker went away: nothing left to clean
            print(f"taskrpc bench: could not delete the benchmark queues: {exc}", file=sys.stderr)


def _ignore_sigint() -> signal.Handlers | None:
    """Ignore Ctrl-C while cleaning up (main thread only); return the previous handler."""
    try:
        return signal.signal(signal.SIGINT, signal.SIG_IGN)  # type: ignore[return-value]
    except ValueError:  # not the main thread
        return None
