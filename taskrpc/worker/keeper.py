"""The connection keeper: serves a worker's connection while the solo pool runs a job.

The solo pool runs each job in the worker's own thread, the one that owns the
connection (no hand-off, the least latency; the main thread, so SIGALRM soft time limits
work). A long job would then silence the connection: no heartbeats sent, none read, and
after two intervals RabbitMQ drops it and redelivers the request to another worker while
this one is still running it.

So the connection belongs to whoever holds :attr:`ConnectionKeeper.lock`. The loop's
thread holds it, except inside :meth:`ConnectionKeeper.job`. A job shorter than
:data:`GRACE` (nearly all of them) costs two uncontended lock operations and nothing else;
once one has run that long, the keeper thread takes the lock and does the loop's
connection work in its place, sending and checking heartbeats and reading what arrives
(deliveries only go to the loop's inbox), until the job ends.

The loop holds the replies of jobs run back to back in one write (see
:mod:`taskrpc.transport.batching`). A reply must not wait for a long job, so
:meth:`ConnectionKeeper.job` sends what is held before any job of a task that has not
just run quickly (under :data:`QUICK`), and the keeper sends it when it takes over.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from ..transport import Transport

logger = logging.getLogger("taskrpc.worker")

#: Seconds a job runs before the keeper takes over the connection (at most; a quarter of
#: the heartbeat interval when that is shorter).
GRACE = 1.0

#: Seconds under which a job counts as quick: the replies held before the next job of
#: its task are not sent first.
QUICK = 0.001

#: Most task names remembered as quick (names come from requests).
MAX_QUICK_TASKS = 1024

#: Longest the keeper waits in one poll, so that a finished job gets its connection back
#: soon.
POLL = 0.05


class ConnectionKeeper:
    """Serves ``transport`` from a thread of its own while a job runs in the loop's thread.

    Create it in the thread that owns the transport (it takes :attr:`lock` there).
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.grace = min(GRACE, transport.heartbeat / 4) if transport.heartbeat else GRACE
        #: Held by whichever thread uses the connection.
        self.lock = threading.Lock()
        self.lock.acquire()
        #: A connection error the keeper met; raised in the loop's thread after the job.
        self.error: BaseException | None = None
        self._job = 0  # number of the job running, 0 between jobs
        self._serving = False
        self._count = 0
        self._since = 0.0
        self._stop = threading.Event()
        self._quick: set[str] = set()  # tasks whose last job took under QUICK
        self._thread = threading.Thread(target=self._run, name="taskrpc-keeper", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def job(self, task: str = "") -> Iterator[None]:
        """Around a job of ``task`` run in the loop's thread: the keeper may use the
        connection meanwhile. Held replies go out first unless ``task`` ran quickly last.

        A connection error the keeper meets is kept in :attr:`error` for the loop to raise.
        """
        quick = self._quick
        if task not in quick:
            self.transport.flush()
        self._count += 1
        self._since = started = time.monotonic()
        self._job = self._count
        self.lock.release()
        try:
            yield
        finally:
            if time.monotonic() - started < QUICK:
                if len(quick) < MAX_QUICK_TASKS:
                    quick.add(task)
            else:
                quick.discard(task)
            self._job = 0  # the keeper lets go within POLL seconds
            if self._serving:
                self.transport.wake()
            self.lock.acquire()

    def stop(self) -> None:
        """End the keeper thread (the loop's thread keeps the lock)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.grace / 2):
            job = self._job
            if not job or time.monotonic() - self._since < self.grace:
                continue
            if not self.lock.acquire(timeout=self.grace):
                continue
            try:
                if self._job == job:  # still the same, long, job
                    self._serve(job)
            finally:
                self.lock.release()

    def _serve(self, job: int) -> None:
        transport = self.transport
        logger.debug("job %d runs long: the keeper serves the connection", job)
        self._serving = True
        try:
            transport.flush()  # replies held behind this job go now
            while self._job == job and not self._stop.is_set():
                transport.heartbeat_check()
                if transport.poll(min(POLL, transport.heartbeat_due())):
                    transport.drain()
        except Exception as exc:  # the connection is lost; the loop reconnects after the job
            self.error = exc
        finally:
            self._serving = False
