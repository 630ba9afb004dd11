"""Distributed tracing with OpenTelemetry (the ``taskrpc[tracing]`` extra).

Add :class:`Tracing` to the app, on both sides::

    from taskrpc.tracing import Tracing

    app.add_middleware(Tracing())

The client then starts a ``"<task> publish"`` span (kind PRODUCER) for each call and
puts its W3C trace context in the request's ``traceparent`` (and ``tracestate``)
headers; it ends when the call settles, with an error status if the worker answered
with an error. The worker starts a ``"<task> process"`` span (kind CONSUMER), a child of
the caller's span, around each request it takes, and, on the threads and solo pools, a
``"<task> run"`` span around each try of the task, current while the task runs (so spans
the task makes are its children). Errors are recorded on the spans as events with the
error code, type and message. Without OpenTelemetry installed, every hook does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .middleware import Middleware

if TYPE_CHECKING:
    from .client.base import OutgoingRequest
    from .client.replies import RawReply
    from .context import RequestContext
    from .messages import Outcome
    from .worker.executor import Job

__all__ = ["Tracing"]

logger = logging.getLogger("taskrpc.tracing")

#: Calls whose publish span is kept open at most (the oldest are ended beyond it).
MAX_OPEN_SPANS = 10_000


def _otel() -> Any:
    try:
        from opentelemetry import context, propagate, trace
    except ImportError:
        return None
    return context, propagate, trace


class _HeaderGetter:
    """Reads carrier values from AMQP headers (which may hold bytes)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        return [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


class Tracing(Middleware):
    """Client and worker spans joined by W3C trace context; see the module docstring.

    Parameters:
        tracer_provider: Where spans go; the global provider by default.
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        otel = _otel()
        self.enabled = otel is not None
        self._publishing: dict[str, Any] = {}
        self._processing: dict[int, Any] = {}
        self._by_request: dict[str, Any] = {}
        self._running: dict[tuple[str, int], tuple[Any, Any]] = {}
        if otel is None:
            logger.debug("OpenTelemetry is not installed: tracing does nothing")
            return
        self._context, self._propagate, self._trace = otel
        self._tracer = self._trace.get_tracer("taskrpc", tracer_provider=tracer_provider)
        self._getter = _HeaderGetter()

    # -- client ---------------------------------------------------------------------

    def before_send(self, request: OutgoingRequest) -> None:
        if not self.enabled:
            return
        trace = self._trace
        span = self._tracer.start_span(
            f"{request.task} publish",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation": "publish",
                "messaging.destination.name": request.queue,
                "messaging.message.id": request.id,
                "taskrpc.task": request.task,
            },
        )
        self._propagate.inject(request.base_headers, context=trace.set_span_in_context(span))
        if len(self._publishing) >= MAX_OPEN_SPANS:  # calls nobody waits for any more
            self._end_publish(next(iter(self._publishing)), None, "abandoned")
        self._publishing[request.id] = span

    def after_call(
        self,
        request: OutgoingRequest,
        reply: RawReply | None,
        error: BaseException | None,
        elapsed: float,
        resends: int,
    ) -> None:
        if not self.enabled:
            return
        if reply is not None:
            status = (reply.headers or {}).get("taskrpc-status")
            self._end_publish(request.id, None, "remote error" if status == "error" else None)
        else:
            self._end_publish(request.id, error, None)

    def after_timeout(self, task: str, request_id: str) -> None:
        if self.enabled:
            self._end_publish(request_id, None, "timed out")

    def _end_publish(
        self, request_id: str, error: BaseException | None, reason: str | None
    ) -> None:
        span = self._publishing.pop(request_id, None)
        if span is None:
            return
        if error is not None:
            span.record_exception(error)
            reason = f"{type(error).__name__}: {error}"
        if reason is not None:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, reason))
        span.end()

    # -- worker loop ----------------------------------------------------------------

    def before_request(self, job: Job) -> None:
        if not self.enabled:
            return
        parent = self._propagate.extract(job.headers, getter=self._getter)
        span = self._tracer.start_span(
            f"{job.task or 'unknown'} process",
            context=parent,
            kind=self._trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation": "process",
                "messaging.destination.name": job.routing_key,
                "messaging.message.id": job.request_id,
                "taskrpc.task": job.task,
                "taskrpc.redelivered": job.redelivered,
            },
        )
        self._processing[id(job)] = span
        self._by_request[job.request_id] = span

    def after_request(self, job: Job, outcome: Outcome, source: str) -> None:
        span = self._processing.pop(id(job), None)
        if span is None:
            return
        if self._by_request.get(job.request_id) is span:
            del self._by_request[job.request_id]
        span.set_attribute("taskrpc.outcome", source)
        if outcome.retries:
            span.set_attribute("taskrpc.retries", outcome.retries)
        if not outcome.ok:
            span.set_attribute("taskrpc.error_code", outcome.error_code or "")
            span.add_event(
                "exception",
                {
                    "exception.type": outcome.error_type or "",
                    "exception.message": outcome.error_message or "",
                    "taskrpc.error_code": outcome.error_code or "",
                },
            )
            description = f"{outcome.error_code}: {outcome.error_type}"
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, description))
        span.end()

    # -- task runs (threads and solo pools: the loop's process) ---------------------

    def before_task(self, context: RequestContext) -> None:
        parent = self._by_request.get(context.id) if self.enabled else None
        if parent is None:
            return
        trace = self._trace
        span = self._tracer.start_span(
            f"{context.task} run",
            context=trace.set_span_in_context(parent),
            attributes={"taskrpc.task": context.task, "taskrpc.retries": context.retries},
        )
        token = self._context.attach(trace.set_span_in_context(span))
        self._running[(context.id, context.retries)] = (span, token)

    def after_task(self, context: RequestContext, error: BaseException | None) -> None:
        entry = self._running.pop((context.id, context.retries), None)
        if entry is None:
            return
        span, token = entry
        self._context.detach(token)
        if error is not None:
            span.record_exception(error)
            span.set_status(
                self._trace.Status(self._trace.StatusCode.ERROR, f"{type(error).__name__}")
            )
        span.end()
