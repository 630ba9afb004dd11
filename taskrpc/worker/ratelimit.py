"""Rate limits per task on each worker: a token bucket per task, and a pool wrapper that
holds requests over the limit without holding up other tasks' requests.

A held request is neither running nor refused: it stays unacknowledged and counts as
one more slot of the pool, so the loop keeps starting other tasks' requests. A worker
with rate-limited tasks consumes with ``Settings.rate_limit_headroom`` more prefetch,
so that held requests do not keep the others at the broker (RabbitMQ applies a new
prefetch only to new consumers, so it cannot follow the number held).
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

from ..rates import TokenBucket, parse_rate
from .executor import Job

if TYPE_CHECKING:
    from ..app import App
    from .pools import Done, Pool


class RateLimitedPool:
    """A pool that starts the jobs of rate-limited tasks only as their buckets allow.

    Jobs over the limit wait in a queue per task, in arrival order; one scheduler thread
    hands them to the inner pool when a token is there. With the solo pool (one job at a
    time, in the worker's thread) the wait happens inline instead.
    """

    def __init__(self, inner: Pool, buckets: dict[str, TokenBucket], *, inline: bool) -> None:
        self._inner = inner
        self._buckets = buckets
        self._inline = inline
        self._waiting: dict[str, collections.deque[tuple[Job, Done]]] = {
            name: collections.deque() for name in buckets
        }
        self._held = 0
        self._closed = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def inline(self) -> bool:
        """Whether jobs run inside :meth:`submit` (the inner pool's, or a rate's wait)."""
        return self._inline

    @property
    def size(self) -> int:
        """The inner pool's size plus the jobs held here (they use no slot of it)."""
        return self._inner.size + self._held

    @property
    def held(self) -> int:
        """Jobs waiting for a token."""
        return self._held

    def submit(self, job: Job, done: Done) -> None:
        bucket = self._buckets.get(job.task)
        if bucket is None:
            self._inner.submit(job, done)
            return
        if self._inline:
            with self._wake:
                while not bucket.take():
                    self._wake.wait(bucket.wait_time())
            self._inner.submit(job, done)
            return
        with self._wake:
            waiting = self._waiting[job.task]
            if not waiting and bucket.take():
                start = True
            else:
                waiting.append((job, done))
                self._held += 1
                start = False
                self._ensure_scheduler()
                self._wake.notify()
        if start:
            self._inner.submit(job, done)

    def _ensure_scheduler(self) -> None:  # with the lock held
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._schedule, name="taskrpc-rate-limits", daemon=True
            )
            self._thread.start()

    def _schedule(self) -> None:
        while True:
            with self._wake:
                due, pause = self._due()
                while not due and not self._closed:
                    self._wake.wait(pause)
                    due, pause = self._due()
                if self._closed:
                    return
                self._held -= len(due)
            for job, done in due:
                self._inner.submit(job, done)

    def _due(self) -> tuple[list[tuple[Job, Done]], float | None]:  # with the lock held
        due: list[tuple[Job, Done]] = []
        pause: float | None = None
        for name, waiting in self._waiting.items():
            bucket = self._buckets[name]
            while waiting and bucket.take():
                due.append(waiting.popleft())
            if waiting:
                wait = bucket.wait_time()
                pause = wait if pause is None else min(pause, wait)
        return due, pause

    def kill_children(self) -> None:
        """Pass a hard stop on to the inner pool, if it has children to kill."""
        kill = getattr(self._inner, "kill_children", None)
        if kill is not None:
            kill()

    def shutdown(self, wait: bool = True) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self._inner.shutdown(wait=wait)


def rate_limited(app: App, pool: Pool, *, inline: bool) -> Pool:
    """Wrap ``pool`` if any task of ``app`` has a rate limit; else return it as it is."""
    buckets = {
        name: TokenBucket(parse_rate(task.rate_limit))
        for name, task in app.tasks.items()
        if task.rate_limit
    }
    return RateLimitedPool(pool, buckets, inline=inline) if buckets else pool
