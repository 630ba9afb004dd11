"""The checks a worker's loop makes before a request reaches a pool."""

from __future__ import annotations

import pytest

from taskrpc import App
from taskrpc.messages import HEADER_DEADLINE, HEADER_PROTOCOL, HEADER_TASK, ReplyBody
from taskrpc.worker.admission import admit
from taskrpc.worker.executor import Job

app = App("admission", broker_url="memory://", max_message_size=2000)


@app.task(name="add")
def add(a: int, b: int) -> int:
    return a + b


def job(body: bytes = b'{"args": [1, 2]}', **headers: object) -> Job:
    base = {HEADER_PROTOCOL: 1, HEADER_TASK: "add"}
    return Job(
        request_id="r",
        task=str(headers.get(HEADER_TASK, "add")),
        body=body,
        content_type="application/json",
        headers={**base, **headers},
    )


def refusal_of(outcome) -> str:
    assert outcome is not None and not outcome.ok
    error = ReplyBody.model_validate_json(outcome.body).error
    return error.type


def test_a_good_request_is_admitted():
    assert admit(app, job()) is None


@pytest.mark.parametrize(
    ("made", "type_name"),
    [
        (job(b"x" * 2001), "PayloadTooLarge"),
        (job(**{HEADER_PROTOCOL: 2}), "BadRequest"),
        (job(**{HEADER_PROTOCOL: True}), "BadRequest"),
        (job(**{HEADER_DEADLINE: "soon"}), "BadRequest"),
        (job(**{HEADER_DEADLINE: False}), "BadRequest"),
        (Job(request_id="r", task="", body=b"{}", content_type="application/json"), "BadRequest"),
    ],
    ids=["too-large", "protocol", "protocol-bool", "deadline-str", "deadline-bool", "no-task"],
)
def test_bad_requests_are_refused_before_decoding(made, type_name):
    assert refusal_of(admit(app, made)) == type_name


def test_a_check_that_breaks_refuses_the_request_instead_of_stopping_the_loop(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(app.codec, "verify", broken)
    assert refusal_of(admit(app, job())) == "RuntimeError"
