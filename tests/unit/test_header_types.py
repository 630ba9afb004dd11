"""The header value types a worker accepts, as docs/protocol.rst lists them."""

from __future__ import annotations

import math

import pytest

from taskrpc import App
from taskrpc.messages import HEADER_DEADLINE, HEADER_PROTOCOL, HEADER_TASK, ReplyBody
from taskrpc.worker.admission import admit
from taskrpc.worker.executor import Job

app = App("header-types", broker_url="memory://")


def job(headers: dict[str, object]) -> Job:
    task = headers.get(HEADER_TASK)
    return Job(
        request_id="r",
        task=task if isinstance(task, str) else "",
        body=b'{"args":[1]}',
        content_type="application/json",
        headers=headers,
    )


def refused(headers: dict[str, object]) -> bool:
    outcome = admit(app, job({HEADER_TASK: "t", **headers}))
    if outcome is None:
        return False
    error = ReplyBody.model_validate_json(outcome.body).error
    assert error is not None and (error.code, error.type) == ("bad_request", "BadRequest")
    return True


def test_the_protocol_header_is_the_integer_1_or_absent():
    assert not refused({HEADER_PROTOCOL: 1})  # every AMQP integer type decodes to an int
    assert not refused({})  # absent: version 1


@pytest.mark.parametrize("value", ["1", 1.0, True, 2, 0])
def test_anything_else_is_refused_as_protocol(value):
    assert refused({HEADER_PROTOCOL: value})


@pytest.mark.parametrize("value", [1795769922, 1795769922.5, 2**40])
def test_a_deadline_is_any_finite_number(value):
    assert not refused({HEADER_PROTOCOL: 1, HEADER_DEADLINE: value})


@pytest.mark.parametrize("value", ["1795769922", True, math.nan, math.inf, -math.inf, b"1"])
def test_a_deadline_of_another_type_or_not_finite_is_refused(value):
    assert refused({HEADER_PROTOCOL: 1, HEADER_DEADLINE: value})


@pytest.mark.parametrize("value", [b"t", 7, None])
def test_the_task_name_is_a_string(value):
    headers = {HEADER_PROTOCOL: 1} if value is None else {HEADER_PROTOCOL: 1, HEADER_TASK: value}
    assert admit(app, job(headers)) is not None
