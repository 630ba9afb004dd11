"""The executor turns every request, good or bad, into exactly one reply."""

import pytest

from taskrpc import App
from taskrpc.messages import ReplyBody
from taskrpc.worker.executor import Job, execute

app = App("exec", broker_url="memory://")


@app.task(name="add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="pair")
def pair(a: object, b: object) -> list[object]:
    return [a, b]


@app.task(name="wrong_type")
def wrong_type() -> int:
    return "not an int"  # type: ignore[return-value]


@app.task(name="unserializable")
def unserializable():
    return object()


@app.task(name="boom")
def boom() -> None:
    raise KeyError("missing")


@app.task(name="coro")
async def coro(x: int) -> int:
    return x * 2


def run(task: str, body: bytes, content_type: str | None = "application/json") -> ReplyBody:
    outcome = execute(app, Job(request_id="r1", task=task, body=body, content_type=content_type))
    reply = ReplyBody.model_validate_json(outcome.body)
    assert outcome.ok is reply.ok
    return reply


def test_a_valid_request_returns_the_result():
    assert run("add", b'{"args": [1, "2"]}').result == 3


def test_async_tasks_are_awaited():
    assert run("coro", b'{"args": [4]}').result == 8


@pytest.mark.parametrize(
    ("task", "body", "content_type", "code"),
    [
        ("nope", b'{"args": []}', "application/json", "unknown_task"),
        ("add", b"{not json", "application/json", "bad_request"),
        ("add", b"[1, 2]", "application/json", "bad_request"),
        ("add", b'{"args": [1, 2], "extra": 1}', "application/json", "bad_request"),
        ("add", b'{"args": [1, 2]}', "application/x-python-serialize", "bad_request"),
        ("add", b'{"args": [1, 2]}', None, "bad_request"),
        ("add", b'{"args": ["x", 2]}', "application/json", "invalid_arguments"),
        ("add", b'{"args": [1]}', "application/json", "invalid_arguments"),
        ("wrong_type", b"{}", "application/json", "invalid_result"),
        ("unserializable", b"{}", "application/json", "invalid_result"),
        ("boom", b"{}", "application/json", "task_failed"),
    ],
)
def test_every_failure_becomes_a_typed_error_reply(task, body, content_type, code):
    reply = run(task, body, content_type)
    assert not reply.ok and reply.error is not None
    assert reply.error.code == code


def test_a_task_exception_travels_with_its_type_but_no_traceback_by_default():
    error = run("boom", b"{}").error
    assert error.type == "KeyError" and "missing" in error.message
    assert error.traceback is None


def test_a_task_exception_travels_with_its_traceback_when_the_worker_sends_them():
    app.configure(send_tracebacks=True)
    try:
        error = run("boom", b"{}").error
    finally:
        app.configure(send_tracebacks=False)
    assert "raise KeyError" in error.traceback


@pytest.mark.parametrize(
    ("body", "type_name"),
    [
        (b'{"args": [' + b"9" * 60_000 + b", 1]}", "IntegerTooLong"),
        (b'{"args": [' + b"[" * 300 + b"]" * 300 + b", 1]}", "NestingTooDeep"),
    ],
    ids=["integer-digits", "nesting"],
)
def test_a_body_over_a_decode_budget_is_a_bad_request_naming_the_budget(body, type_name):
    error = run("pair", body).error  # (to add, whose ints bound it, too many elements)
    assert (error.code, error.type) == ("bad_request", type_name)


def test_true_for_an_int_is_accepted_unless_arguments_are_strict():
    assert run("add", b'{"args": [true, 2]}').result == 3
    app.configure(strict_arguments=True)
    try:
        error = run("add", b'{"args": [true, 2]}').error
        assert run("add", b'{"args": [1, 2]}').result == 3
    finally:
        app.configure(strict_arguments=False)
    assert error.code == "invalid_arguments" and "valid integer" in error.message
