"""Structured logs: JSON lines from a real worker, and the same fields on text records."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from taskrpc import RemoteError
from taskrpc.logs import REQUEST_FIELDS, JsonFormatter, RequestLog
from taskrpc.messages import Outcome
from taskrpc.middleware import SOURCE_REFUSED
from taskrpc.worker.executor import Job


@pytest.mark.broker
def test_a_json_worker_logs_one_object_a_line_per_request(rpc_app, spawn_worker):
    worker = spawn_worker("--pool", "threads", "--log-format", "json")
    assert rpc_app.send_task("add", [2, 3]).get() == 5
    with pytest.raises(RemoteError):
        rpc_app.send_task("fail", ["nope"]).get()
    worker.signal(15)
    assert worker.wait(timeout=20) == 0
    records = [json.loads(line) for line in worker.output().splitlines() if line.strip()]
    requests = {r["task"]: r for r in records if r["logger"] == "taskrpc.request"}
    ok, failed = requests["add"], requests["fail"]
    assert ok["outcome"] == "succeeded" and ok["level"] == "info" and ok["error_code"] is None
    assert ok["queue"] == rpc_app.settings.default_queue and ok["duration"] >= 0
    assert len(ok["request_id"]) == 32
    assert failed["outcome"] == "failed" and failed["level"] == "warning"
    assert failed["error_code"] == "task_failed" and failed["error_type"] == "ValueError"
    assert all(set(REQUEST_FIELDS) <= set(r) for r in requests.values())
    assert all(r["time"].endswith("Z") for r in records)


def test_text_records_carry_the_same_fields_as_extra(caplog):
    job = Job(request_id="r1", task="add", body=b"", content_type=None, routing_key="q")
    outcome = Outcome(
        ok=False,
        body=b"",
        content_type="application/json",
        error_code="revoked",
        error_type="Revoked",
    )
    hook = RequestLog()
    with caplog.at_level(logging.INFO, logger="taskrpc.request"):
        hook.before_request(job)
        hook.after_request(job, outcome, SOURCE_REFUSED)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "add [r1] refused" in record.getMessage()
    assert {name: getattr(record, name) for name in ("task", "queue", "outcome", "error_code")} == {
        "task": "add",
        "queue": "q",
        "outcome": "refused",
        "error_code": "revoked",
    }
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "r1" and line["outcome"] == "refused"


def test_the_json_formatter_keeps_exceptions_and_never_breaks_on_odd_values():
    logger = logging.getLogger("x")
    try:
        raise KeyError("k")
    except KeyError:
        record = logger.makeRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("here",),
            sys.exc_info(),
            extra={"odd": object()},
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed here" and "KeyError" in line["exception"]
    assert line["odd"].startswith("<object")
