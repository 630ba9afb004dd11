"""What a worker knows about itself, for the control plane: counts, rates, the requests
running now, recent failures, run-time samples, and the ids revoked.

:class:`WorkerState` is middleware the control server adds to its worker; its hooks run
in the worker's loop, its readers in the control thread, so it keeps a lock.
"""

from __future__ import annotations

import collections
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from ..exceptions import RemoteError, Revoked
from ..middleware import SOURCE_CACHE, SOURCE_REFUSED, Middleware

if TYPE_CHECKING:
    from ..messages import Outcome
    from ..worker import Worker
    from ..worker.executor import Job

#: Run-time samples kept per task (the most recent), for percentiles.
SAMPLES = 256
#: Failures remembered (the most recent).
FAILURES = 50
#: Revoked ids remembered without a deadline, at most this long (seconds) ...
REVOKE_TTL = 3600.0
#: ... and this many in all.
REVOKE_MAX = 50_000

_REFUSALS = frozenset(
    {"bad_request", "invalid_arguments", "deadline_exceeded", "unknown_task", "revoked"}
)


class TaskCounts:
    """Counts and run-time samples of one task on one worker."""

    __slots__ = ("received", "succeeded", "failed", "refused", "retried", "samples")

    def __init__(self) -> None:
        self.received = self.succeeded = self.failed = self.refused = self.retried = 0
        self.samples: collections.deque[float] = collections.deque(maxlen=SAMPLES)

    def as_dict(self, samples: bool = False) -> dict[str, Any]:
        extra = {"samples": [round(s, 6) for s in self.samples]} if samples else {}
        return {
            **extra,
            "received": self.received,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "refused": self.refused,
            "retried": self.retried,
            "latency": percentiles(list(self.samples)),
        }


def percentiles(samples: list[float]) -> dict[str, float | None]:
    """p50, p90 and p99 of ``samples`` (seconds), ``None`` without samples."""
    if not samples:
        return {"p50": None, "p90": None, "p99": None}
    ordered = sorted(samples)
    last = len(ordered) - 1
    return {f"p{q}": ordered[min(last, round(last * q / 100))] for q in (50, 90, 99)}


class WorkerState(Middleware):
    """The live state of one worker, kept by its hooks; see the module docstring."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskCounts] = collections.defaultdict(TaskCounts)
        self._active: dict[int, tuple[Job, float]] = {}
        self._failures: collections.deque[dict[str, Any]] = collections.deque(maxlen=FAILURES)
        self._revoked: dict[str, float] = {}  # request id -> forget after (time.time())
        self._per_queue: collections.Counter[str] = collections.Counter()
        self.total = 0

    # -- hooks (the worker's loop) --------------------------------------------------

    def before_request(self, job: Job) -> None:
        with self._lock:
            self._active[id(job)] = (job, time.time())

    def refuse(self, job: Job) -> RemoteError | None:
        if not self._revoked or job.request_id not in self._revoked:
            return None
        if job.deadline is not None:  # no copy of it can come after its deadline
            with self._lock:
                forget = self._revoked.get(job.request_id)
                if forget is not None:
                    self._revoked[job.request_id] = min(forget, job.deadline + 60)
        return Revoked(f"request {job.request_id} was revoked", type_name="Revoked")

    def after_request(self, job: Job, outcome: Outcome, source: str) -> None:
        now = time.time()
        with self._lock:
            started = self._active.pop(id(job), None)
            task = job.task if job.task in self.worker.app.tasks else "<unknown>"
            counts = self._tasks[task]
            counts.received += 1
            self.total += 1
            self._per_queue[job.routing_key] += 1
            counts.retried += outcome.retries
            if outcome.ok:
                counts.succeeded += 1
            elif source == SOURCE_REFUSED or outcome.error_code in _REFUSALS:
                counts.refused += 1
            elif source != SOURCE_CACHE:
                counts.failed += 1
            if started is not None and source != SOURCE_CACHE and outcome.ok:
                counts.samples.append(now - started[1])
            if not outcome.ok and source != SOURCE_CACHE:
                self._failures.append(_failure(job, task, outcome, now))

    # -- revocations ------------------------------------------------------------------

    def revoke(self, ids: list[str], deadline: float | None) -> int:
        """Refuse ``ids`` until ``deadline`` (epoch seconds) or :data:`REVOKE_TTL`."""
        now = time.time()
        until = deadline if deadline is not None else now + REVOKE_TTL
        with self._lock:
            for key, forget in list(self._revoked.items()):
                if forget < now:
                    del self._revoked[key]
            for request_id in ids:
                if len(self._revoked) < REVOKE_MAX:
                    self._revoked[str(request_id)] = min(until, now + REVOKE_TTL)
        return len(ids)

    def running(self, request_id: str) -> bool:
        """Whether ``request_id`` is running now."""
        with self._lock:
            return any(job.request_id == request_id for job, _ in self._active.values())

    # -- readers (the control thread) -------------------------------------------------

    def identity(self) -> dict[str, Any]:
        worker = self.worker
        return {
            "hostname": self.hostname,
            "pid": self.pid,
            "app": worker.app.name,
            "pool": worker.pool_kind,
            "concurrency": worker.concurrency,
        }

    def stats(self, samples: bool = False) -> dict[str, Any]:
        """Identity, state, counts per task; ``samples``: with each task's run times."""
        worker = self.worker
        started = worker.started_at or time.time()
        with self._lock:
            tasks = {name: c.as_dict(samples) for name, c in sorted(self._tasks.items())}
            total, failures = self.total, list(self._failures)
            per_queue = dict(self._per_queue)
            revoked = len(self._revoked)
        uptime = time.time() - started
        return {
            **self.identity(),
            "uptime": round(uptime, 3),
            "state": "connected" if worker.connected else "disconnected",
            "busy": worker.busy,
            "queues": list(worker.queues),
            "answered_per_queue": per_queue,
            "total": total,
            "rate": round(total / uptime, 3) if uptime > 0 else 0.0,
            "tasks": tasks,
            "failures": failures,
            "revoked": revoked,
        }

    def active(self) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            running = list(self._active.values())
        return [
            {
                "id": job.request_id,
                "task": job.task,
                "queue": job.routing_key,
                "started": started,
                "runtime": round(now - started, 3),
                "redelivered": job.redelivered,
            }
            for job, started in running
        ]


def _failure(job: Job, task: str, outcome: Outcome, now: float) -> dict[str, Any]:
    return {
        "time": now,
        "id": job.request_id,
        "task": task,
        "queue": job.routing_key,
        "code": outcome.error_code,
        "type": outcome.error_type,
        "message": (outcome.error_message or "")[:300],
    }
