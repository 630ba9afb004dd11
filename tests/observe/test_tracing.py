"""Tracing across the real broker, into OpenTelemetry's in-memory exporter."""

from __future__ import annotations

import re
import time

import pytest
from kombu import Connection
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from taskrpc import App, RemoteError
from taskrpc.tracing import Tracing

pytestmark = pytest.mark.broker

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def traced_app(broker_url, unique_queue, exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = App("traced", broker_url=broker_url, default_queue=unique_queue, default_timeout=20)
    app.add_middleware(Tracing(tracer_provider=provider))
    tracer = provider.get_tracer("test")

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        with tracer.start_as_current_span("inside add"):
            return a + b

    @app.task(name="explode")
    def explode() -> None:
        raise ValueError("kaboom")

    yield app
    app.close()


def wait_for_spans(exporter, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while len(exporter.get_finished_spans()) < count:
        assert time.monotonic() < deadline, [s.name for s in exporter.get_finished_spans()]
        time.sleep(0.02)
    return {span.name: span for span in exporter.get_finished_spans()}


def test_the_worker_span_is_a_child_of_the_callers_span(traced_app, exporter, start_worker):
    start_worker(traced_app)
    assert traced_app.tasks["add"].delay(2, 3).get() == 5
    spans = wait_for_spans(exporter, 4)
    publish, process = spans["add publish"], spans["add process"]
    run, inside = spans["add run"], spans["inside add"]
    assert publish.kind == trace.SpanKind.PRODUCER and process.kind == trace.SpanKind.CONSUMER
    trace_id = publish.context.trace_id
    assert {s.context.trace_id for s in spans.values()} == {trace_id}
    assert process.parent.span_id == publish.context.span_id
    assert run.parent.span_id == process.context.span_id
    assert inside.parent.span_id == run.context.span_id  # the task's own spans nest
    assert process.attributes["messaging.destination.name"] == traced_app.settings.default_queue
    assert publish.status.is_ok and process.status.is_ok


def test_errors_are_recorded_on_every_span(traced_app, exporter, start_worker):
    start_worker(traced_app)
    with pytest.raises(RemoteError):
        traced_app.tasks["explode"].delay().get()
    spans = wait_for_spans(exporter, 3)
    for name in ("explode publish", "explode process", "explode run"):
        assert spans[name].status.status_code == trace.StatusCode.ERROR, name
    (event,) = spans["explode process"].events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "kaboom"
    assert event.attributes["taskrpc.error_code"] == "task_failed"
    (run_event,) = spans["explode run"].events
    assert run_event.attributes["exception.type"] == "ValueError"


def test_the_trace_context_travels_as_a_w3c_traceparent_header(traced_app, exporter):
    queue = traced_app.settings.default_queue
    result = traced_app.tasks["add"].delay(1, 1)  # no worker: read the request off the queue
    with Connection(traced_app.settings.broker_url) as connection:
        message = connection.SimpleQueue(queue).get(timeout=10)
        headers = message.headers
        message.ack()
    assert TRACEPARENT.match(headers["traceparent"])
    trace_id = headers["traceparent"].split("-")[1]
    del result
    traced_app.close()
    spans = exporter.get_finished_spans()
    assert all(format(s.context.trace_id, "032x") == trace_id for s in spans)


def test_without_opentelemetry_tracing_does_nothing(monkeypatch, memory_app):
    import taskrpc.tracing as tracing

    monkeypatch.setattr(tracing, "_otel", lambda: None)
    hooks = tracing.Tracing()
    assert not hooks.enabled
    memory_app.add_middleware(hooks)

    @memory_app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    from taskrpc.worker import Worker

    worker = Worker(memory_app)
    thread = worker.start_in_thread()
    try:
        assert add.delay(1, 2).get(timeout=10) == 3
    finally:
        worker.stop()
        thread.join(10)
