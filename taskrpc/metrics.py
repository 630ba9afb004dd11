"""Prometheus metrics for workers and clients (the ``taskrpc[metrics]`` extra).

:class:`WorkerMetrics` and :class:`ClientMetrics` are middleware: they count in the
worker's loop and in the client's hooks, into a ``prometheus_client`` registry (the
default one unless you pass another). The worker's loop runs in the worker's main
process whatever the pool, so nothing counted there is lost with the processes pool;
retries, made in pool children, travel back with each reply's outcome.

``taskrpc worker --metrics-port 9808`` serves them on ``/metrics``; in a web app, add
:class:`ClientMetrics` to the app and serve the default registry the way the web
framework does (``prometheus_client.make_asgi_app()`` / ``make_wsgi_app()``).
The monitoring guide lists every metric with its meaning.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .messages import HEADER_SENT_AT
from .metrics_exposition import RejectionsCollector, load_prometheus, serve_metrics
from .middleware import SOURCE_CACHE, SOURCE_REFUSED, Middleware

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .client.base import OutgoingRequest
    from .client.replies import RawReply
    from .messages import Outcome
    from .worker import Worker
    from .worker.executor import Job

__all__ = ["ClientMetrics", "WorkerMetrics", "serve_metrics"]

#: Run-time, queue-wait and round-trip histogram buckets, in seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

#: Error codes that mean the task never ran: counted as refusals, not failures.
REFUSAL_CODES = frozenset(
    {"bad_request", "invalid_arguments", "deadline_exceeded", "unknown_task", "revoked"}
)

#: The ``task`` label of requests for tasks the worker does not know (bounded labels:
#: a sender cannot make up new series).
UNKNOWN_TASK = "<unknown>"


def refusal_reason(outcome: Outcome) -> str:
    """Why a request was refused, as a label: the error code, or for ``bad_request`` the
    error's type (``payload_too_large``, ``bad_signature``, ``decode_error``, ...)."""
    code = outcome.error_code or "bad_request"
    if code == "bad_request" and outcome.error_type:
        return _snake(outcome.error_type)
    return code


def _snake(name: str) -> str:
    name = name.rsplit(".", 1)[-1]
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class _Series:
    """The labelled children of one (task, queue), looked up once."""

    __slots__ = ("received", "succeeded", "retried", "redelivered", "cached", "run", "wait", "busy")

    def __init__(self, m: WorkerMetrics, task: str, queue: str) -> None:
        self.received = m.received.labels(task, queue)
        self.succeeded = m.succeeded.labels(task, queue)
        self.retried = m.retried.labels(task, queue)
        self.redelivered = m.redelivered.labels(task, queue)
        self.cached = m.duplicates.labels(task, queue)
        self.run = m.run_time.labels(task, queue)
        self.wait = m.queue_wait.labels(task, queue)
        self.busy = m.in_progress.labels(task, queue)


class WorkerMetrics(Middleware):
    """Counts what a worker does; pass it to the worker (``Worker(middleware=[...])``).

    Parameters:
        registry: Where the metrics live; ``prometheus_client.REGISTRY`` by default.

    Example:
        >>> from taskrpc.worker import Worker  # doctest: +SKIP
        >>> Worker(app, middleware=[WorkerMetrics()]).run()  # doctest: +SKIP
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        prom = load_prometheus()
        registry = registry if registry is not None else prom.REGISTRY
        labels = ("task", "queue")

        def counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> Any:
            return prom.Counter(name, doc, (*labels, *extra), registry=registry)

        def histogram(name: str, doc: str) -> Any:
            return prom.Histogram(name, doc, labels, buckets=BUCKETS, registry=registry)

        self.received = counter("taskrpc_worker_received", "Requests taken from the queues.")
        self.succeeded = counter("taskrpc_worker_succeeded", "Requests answered with a result.")
        self.failed = counter("taskrpc_worker_failed", "Tasks that ran and failed.", ("code",))
        self.refused = counter(
            "taskrpc_worker_refused", "Requests refused without running.", ("reason",)
        )
        self.retried = counter("taskrpc_worker_retried", "Retries of failed task runs.")
        self.redelivered = counter(
            "taskrpc_worker_redelivered", "Requests the broker delivered again."
        )
        self.duplicates = counter(
            "taskrpc_worker_duplicates_answered", "Requests answered from the reply cache."
        )
        self.run_time = histogram("taskrpc_worker_run_seconds", "From taking to answering.")
        self.queue_wait = histogram(
            "taskrpc_worker_queue_wait_seconds", "From the client's send to the worker's take."
        )
        self.in_progress = prom.Gauge(
            "taskrpc_worker_in_progress",
            "Requests taken, not yet answered.",
            labels,
            registry=registry,
        )
        self.pool_busy = prom.Gauge(
            "taskrpc_worker_pool_busy", "Pool slots in use.", registry=registry
        )
        self.pool_size = prom.Gauge("taskrpc_worker_pool_size", "Pool slots.", registry=registry)
        self.connected = prom.Gauge(
            "taskrpc_worker_connected", "1 while connected to the broker.", registry=registry
        )
        self.reconnects = prom.Counter(
            "taskrpc_worker_reconnects", "Connections made after a lost one.", registry=registry
        )
        self._registry = registry
        self._series: dict[tuple[str, str], _Series] = {}
        self._started: dict[int, tuple[float, _Series]] = {}
        self._known: frozenset[str] = frozenset()
        self._connections = 0

    def after_worker_boot(self, worker: Worker) -> None:
        self._known = frozenset(worker.app.tasks)
        rejections = getattr(worker, "rejections", None)
        if rejections is not None:
            self._registry.register(RejectionsCollector(rejections))
        self.pool_size.set(worker.concurrency)
        self.pool_busy.set_function(lambda: worker.busy)

    def after_connect(self, worker: Worker) -> None:
        self._connections += 1
        if self._connections > 1:
            self.reconnects.inc()
        self.connected.set(1)

    def after_connection_lost(self, worker: Worker, error: BaseException) -> None:
        self.connected.set(0)

    def before_worker_shutdown(self, worker: Worker) -> None:
        self.connected.set(0)

    def _series_of(self, job: Job) -> _Series:
        task = job.task if job.task in self._known else UNKNOWN_TASK
        key = (task, job.routing_key)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self, task, job.routing_key)
        return series

    def before_request(self, job: Job) -> None:
        series = self._series_of(job)
        series.received.inc()
        series.busy.inc()
        if job.redelivered:
            series.redelivered.inc()
        sent_at = job.headers.get(HEADER_SENT_AT)
        if isinstance(sent_at, float):
            series.wait.observe(max(0.0, time.time() - sent_at))
        self._started[id(job)] = (time.perf_counter(), series)

    def after_request(self, job: Job, outcome: Outcome, source: str) -> None:
        started = self._started.pop(id(job), None)
        if started is None:
            return
        began, series = started
        series.busy.dec()
        if source == SOURCE_CACHE:
            series.cached.inc()
            return
        if outcome.retries:
            series.retried.inc(outcome.retries)
        code = outcome.error_code
        if outcome.ok:
            series.succeeded.inc()
        elif source == SOURCE_REFUSED or code in REFUSAL_CODES:
            task = job.task if job.task in self._known else UNKNOWN_TASK
            self.refused.labels(task, job.routing_key, refusal_reason(outcome)).inc()
            return
        else:
            task = job.task if job.task in self._known else UNKNOWN_TASK
            self.failed.labels(task, job.routing_key, code or "task_failed").inc()
        series.run.observe(time.perf_counter() - began)


class ClientMetrics(Middleware):
    """Counts a client's calls; add it to the app before its client connects.

    Parameters:
        registry: Where the metrics live; ``prometheus_client.REGISTRY`` by default.

    Example:
        >>> app.add_middleware(ClientMetrics())  # doctest: +SKIP
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        prom = load_prometheus()
        registry = registry if registry is not None else prom.REGISTRY
        self.sent = prom.Counter(
            "taskrpc_client_calls_sent", "Calls sent.", ("task",), registry=registry
        )
        self.replies = prom.Counter(
            "taskrpc_client_replies",
            "Calls settled, by status (ok, error, or a local error).",
            ("task", "status"),
            registry=registry,
        )
        self.timeouts = prom.Counter(
            "taskrpc_client_timeouts",
            "Calls given up at their deadline.",
            ("task",),
            registry=registry,
        )
        self.dropped = prom.Counter(
            "taskrpc_client_dropped_replies",
            "Replies dropped: unknown or duplicate.",
            ("kind",),
            registry=registry,
        )
        self.resends = prom.Counter(
            "taskrpc_client_resends", "Idempotent calls sent again.", ("task",), registry=registry
        )
        self.round_trip = prom.Histogram(
            "taskrpc_client_round_trip_seconds",
            "From send to reply.",
            ("task",),
            buckets=BUCKETS,
            registry=registry,
        )
        # Labelled children, looked up once: labels() costs more than inc() itself.
        self._sent: dict[str, Any] = {}
        self._replies: dict[tuple[str, str], Any] = {}
        self._round_trip: dict[str, Any] = {}

    def before_send(self, request: OutgoingRequest) -> None:
        task = request.task
        child = self._sent.get(task)
        if child is None:
            child = self._sent[task] = self.sent.labels(task)
        child.inc()

    def after_call(
        self,
        request: OutgoingRequest,
        reply: RawReply | None,
        error: BaseException | None,
        elapsed: float,
        resends: int,
    ) -> None:
        task = request.task
        if reply is not None:
            status = str((reply.headers or {}).get("taskrpc-status") or "ok")
            timer = self._round_trip.get(task)
            if timer is None:
                timer = self._round_trip[task] = self.round_trip.labels(task)
            timer.observe(elapsed)
        else:
            status = _snake(type(error).__name__) if error is not None else "unknown"
        counter = self._replies.get((task, status))
        if counter is None:
            counter = self._replies[(task, status)] = self.replies.labels(task, status)
        counter.inc()
        if resends:
            self.resends.labels(request.task).inc(resends)

    def after_timeout(self, task: str, request_id: str) -> None:
        self.timeouts.labels(task).inc()

    def after_dropped_reply(self, kind: str) -> None:
        self.dropped.labels(kind).inc()
