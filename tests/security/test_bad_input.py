"""Bad input against a real worker process on the real broker, published raw.

For every case: the caller gets a typed error (never a timeout), nothing ran that should
not have (the ``touch`` task would leave a marker file), the worker stays up and keeps
serving, and the request was acknowledged, not requeued (checked by ``still_serving``,
and at the end of the module by the worker's log).
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import pickle
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskrpc import BadRequest, InvalidArguments, TimeoutError, UnknownTask
from taskrpc.messages import HEADER_DEADLINE, HEADER_PROTOCOL, HEADER_TASK

pytestmark = [pytest.mark.broker, pytest.mark.usefixtures("still_serving")]

#: The worker replies in the request's serializer: msgpack requests get msgpack replies.
CLIENT_OPTIONS = {"accept_replies": ("json", "msgpack")}

LIMIT = 4 * 1024 * 1024  # the worker's default max_message_size
TOUCH = {HEADER_PROTOCOL: 1, HEADER_TASK: "touch"}
ADD = {HEADER_PROTOCOL: 1, HEADER_TASK: "add"}
#: ``echo(value: Any)``: only the general budgets bound what it takes (``touch(marker:
#: str)`` takes one scalar, so any body holding more than a few elements is refused first).
ECHO = {HEADER_PROTOCOL: 1, HEADER_TASK: "echo"}
TINY_ARRAYS = b"[]," * ((LIMIT - 40) // 3)


class CreatesFile:
    """Unpickling this opens (so creates) ``path``: proof that pickle was decoded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.open, (self.path, "w"))


def touch_body(marker: str) -> bytes:
    return json.dumps({"args": [marker]}).encode()


def nested(depth: int) -> bytes:
    return b'{"args": [' + b"[" * depth + b"]" * depth + b"]}"


def bomb(method: str) -> bytes:
    wbits = {"zlib": zlib.MAX_WBITS, "gzip": 16 + zlib.MAX_WBITS}[method]
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = b"\0" * (1 << 20)
    data = b"".join(compressor.compress(chunk) for _ in range(64))  # 64 MiB of zeros
    return data + compressor.flush()


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad request: its body (given the marker path), how it is published, what
    error the caller must get."""

    body: Callable[[str], bytes]
    error: type[Exception] = BadRequest
    type_name: str | None = None
    content_type: str | None = "application/json"
    content_encoding: str | None = "binary"
    headers: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(TOUCH))


def const(data: bytes) -> Callable[[str], bytes]:
    return lambda marker: data


CASES: dict[str, Case] = {
    # -- bodies that are not JSON, or not the envelope --------------------------------
    "invalid-json": Case(const(b"{oops"), type_name="DecodeError"),
    "truncated-json": Case(lambda m: touch_body(m)[:-3], type_name="DecodeError"),
    "trailing-garbage": Case(lambda m: touch_body(m) + b" {}", type_name="DecodeError"),
    "empty-body": Case(const(b""), type_name="DecodeError"),
    "json-array-body": Case(lambda m: json.dumps([m]).encode(), type_name="DecodeError"),
    "json-string-body": Case(const(b'"touch"'), type_name="DecodeError"),
    "json-null-body": Case(const(b"null"), type_name="DecodeError"),
    "extra-envelope-field": Case(
        lambda m: json.dumps({"args": [m], "run_as": "root"}).encode(),
        type_name="ValidationError",
    ),
    "args-not-a-list": Case(
        lambda m: json.dumps({"args": m}).encode(), type_name="ValidationError"
    ),
    "kwargs-not-an-object": Case(const(b'{"kwargs": [1]}'), type_name="ValidationError"),
    "invalid-utf8": Case(const(b'{"args": ["\xff\xfe"]}'), type_name="DecodeError"),
    "nan": Case(const(b'{"args": [NaN]}'), type_name="DecodeError"),
    "infinity": Case(const(b'{"args": [Infinity]}'), type_name="DecodeError"),
    "minus-infinity": Case(const(b'{"args": [-Infinity]}'), type_name="DecodeError"),
    # 100,000 arrays are over the element budget before their depth is seen
    "deeply-nested": Case(const(nested(100_000)), type_name="TooManyElements", headers=ECHO),
    "nested-past-the-parser-limit": Case(
        const(nested(300)), type_name="NestingTooDeep", headers=ECHO
    ),
    "msgpack-nested-past-the-budget": Case(
        const(b"\x81\xa4args\x91" + b"\x91" * 500 + b"\xc0"),
        type_name="NestingTooDeep",
        content_type="application/x-msgpack",
        headers=ECHO,
    ),
    "nested-where-a-string-is-declared": Case(const(nested(300)), type_name="TooManyElements"),
    # -- decode budgets --------------------------------------------------------------------
    "integer-of-4M-digits-in-4KB": Case(
        const(zlib.compress(b'{"args": [' + b"7" * 4_000_000 + b"]}", 9)),
        type_name="IntegerTooLong",
        content_encoding="zlib",
    ),
    "many-long-integers": Case(
        const(b'{"args": [[' + b",".join([b"7" * 4400] * 12) + b"]]}"),
        type_name="IntegerTooLong",
        headers=ECHO,
    ),
    "4-MiB-of-tiny-arrays-for-a-string": Case(
        const(b'{"args": [[' + TINY_ARRAYS + b"[]]]}"), type_name="TooManyElements"
    ),
    "4-MiB-of-tiny-arrays-for-anything": Case(
        const(b'{"args": [[' + TINY_ARRAYS + b"[]]]}"), type_name="TooManyElements", headers=ECHO
    ),
    "msgpack-4-MiB-of-tiny-arrays": Case(
        const(b"\x81\xa4args\x91\xdd" + (LIMIT - 20).to_bytes(4, "big") + b"\x90" * (LIMIT - 20)),
        type_name="TooManyElements",
        content_type="application/x-msgpack",
        headers={**ECHO, HEADER_TASK: "echo.msgpack"},
    ),
    "too-many-headers": Case(
        touch_body,
        headers={**TOUCH, **{f"x-{i}": i for i in range(200)}},
        type_name="TooManyHeaders",
    ),
    "headers-too-large": Case(
        touch_body, headers={**TOUCH, "x-big": "h" * 40_000}, type_name="HeadersTooLarge"
    ),
    "huge-body": Case(
        const(b'{"args": ["' + b"x" * (LIMIT + 1) + b'"]}'), type_name="PayloadTooLarge"
    ),
    # -- content types and encodings ---------------------------------------------------
    "text-plain": Case(touch_body, type_name="ContentDisallowed", content_type="text/plain"),
    "no-content-type": Case(touch_body, type_name="ContentDisallowed", content_type=None),
    "empty-content-type": Case(touch_body, type_name="ContentDisallowed", content_type=""),
    "yaml": Case(
        const(b"args: [1]"), type_name="ContentDisallowed", content_type="application/x-yaml"
    ),
    "json-with-parameters": Case(
        touch_body, type_name="ContentDisallowed", content_type="application/json; charset=x"
    ),
    "pickle": Case(
        lambda m: pickle.dumps(CreatesFile(m)),
        type_name="ContentDisallowed",
        content_type="application/x-python-serialize",
    ),
    "pickle-labelled-json": Case(lambda m: pickle.dumps(CreatesFile(m)), type_name="DecodeError"),
    "pickle-labelled-msgpack": Case(
        lambda m: pickle.dumps(CreatesFile(m)),
        type_name="DecodeError",
        content_type="application/x-msgpack",
    ),
    "malformed-msgpack": Case(
        const(b"\x92\x01"), type_name="DecodeError", content_type="application/x-msgpack"
    ),
    "msgpack-unknown-extension": Case(
        const(b"\x81\xa4args\x91\xd4\x07\x00"),
        type_name="DecodeError",
        content_type="application/x-msgpack",
    ),
    "unknown-content-encoding": Case(
        touch_body, type_name="ContentDisallowed", content_encoding="br"
    ),
    "corrupt-zlib": Case(const(b"x\x9cnot zlib"), type_name="DecodeError", content_encoding="zlib"),
    "truncated-zlib": Case(
        lambda m: zlib.compress(touch_body(m))[:-4],
        type_name="DecodeError",
        content_encoding="zlib",
    ),
    "zlib-bomb": Case(const(bomb("zlib")), type_name="PayloadTooLarge", content_encoding="zlib"),
    "gzip-bomb": Case(const(bomb("gzip")), type_name="PayloadTooLarge", content_encoding="gzip"),
    # -- headers -------------------------------------------------------------------------
    "no-headers": Case(touch_body, headers={}),
    "no-task-header": Case(touch_body, headers={HEADER_PROTOCOL: 1}),
    "empty-task-header": Case(touch_body, headers={**TOUCH, HEADER_TASK: ""}),
    "task-header-a-number": Case(touch_body, headers={**TOUCH, HEADER_TASK: 42}),
    "task-header-a-list": Case(touch_body, headers={**TOUCH, HEADER_TASK: ["touch"]}),
    "task-header-a-table": Case(touch_body, headers={**TOUCH, HEADER_TASK: {"name": "touch"}}),
    "unknown-task": Case(touch_body, UnknownTask, headers={**TOUCH, HEADER_TASK: "rm -rf"}),
    "task-named-like-a-module": Case(
        touch_body, UnknownTask, headers={**TOUCH, HEADER_TASK: "os.system"}
    ),
    "future-protocol": Case(touch_body, headers={**TOUCH, HEADER_PROTOCOL: 99}),
    "protocol-a-string": Case(touch_body, headers={**TOUCH, HEADER_PROTOCOL: "1"}),
    "deadline-a-string": Case(touch_body, headers={**TOUCH, HEADER_DEADLINE: "tomorrow"}),
    "deadline-passed": Case(touch_body, TimeoutError, headers={**TOUCH, HEADER_DEADLINE: 1.0}),
    # -- arguments ---------------------------------------------------------------------
    "wrong-argument-types": Case(const(b'{"args": ["a", "b"]}'), InvalidArguments, headers=ADD),
    "too-many-arguments": Case(const(b'{"args": [1, 2, 3]}'), InvalidArguments, headers=ADD),
    "missing-argument": Case(const(b'{"args": [1]}'), InvalidArguments, headers=ADD),
    "unexpected-keyword": Case(
        const(b'{"args": [1, 2], "kwargs": {"c": 3}}'), InvalidArguments, headers=ADD
    ),
    "argument-twice": Case(
        const(b'{"args": [1, 2], "kwargs": {"a": 3}}'), InvalidArguments, headers=ADD
    ),
    "float-for-int": Case(const(b'{"args": [1.5, 2]}'), InvalidArguments, headers=ADD),
    "object-for-str": Case(const(b'{"args": [{"path": "/tmp/x"}]}'), InvalidArguments),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_bad_request_gets_a_typed_error_and_runs_nothing(raw, tmp_path: Path, case: Case):
    marker = tmp_path / "marker"
    result = raw.call(
        case.body(str(marker)),
        content_type=case.content_type,
        content_encoding=case.content_encoding,
        headers=case.headers,
    )
    with pytest.raises(case.error) as info:
        result.get(timeout=15)
    if case.type_name is not None:
        assert info.value.type_name == case.type_name, info.value
    if isinstance(info.value, TimeoutError):
        assert info.value.started is False
    assert not marker.exists(), "a bad request ran"


def test_a_request_without_reply_to_is_acked_and_answered_nowhere(raw, client_app, tmp_path):
    marker = tmp_path / "marker"
    raw.publish(b"{oops", headers=TOUCH, properties={"correlation_id": "no-reply-to"})
    raw.publish(touch_body(str(marker)), headers=TOUCH)  # valid, fire and forget: it runs
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.read_text() == "ran\n"


def test_a_request_without_correlation_id_is_answered_without_one(raw, client_app):
    unknown = client_app.client.unknown_replies
    raw.publish(b"{oops", headers=TOUCH, properties={"reply_to": raw.reply_to()})
    deadline = time.monotonic() + 10
    while client_app.client.unknown_replies == unknown and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client_app.client.unknown_replies == unknown + 1  # answered, matched no call


def test_a_reply_to_a_missing_queue_is_dropped_and_the_worker_carries_on(raw, tmp_path):
    raw.publish(
        b"{oops", headers=TOUCH, properties={"correlation_id": "x", "reply_to": "no.such.queue"}
    )


def test_a_flood_of_bad_requests_is_all_answered(raw):
    results = [raw.call(b"{oops", headers=TOUCH) for _ in range(200)]
    for result in results:
        with pytest.raises(BadRequest):
            result.get(timeout=15)


def test_the_suite_tries_at_least_fifty_bad_inputs():
    assert len(CASES) >= 50


from tests.security.apps import BARE_QUEUE  # noqa: E402 - the ``shout`` task's queue


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'"hi"', None, b'"HI"'),
        (b'"hi"', "application/json", b'"HI"'),
        (b"42", None, b'{"error":{"code":"invalid_arguments"'),
        (b"{oops", None, b'{"error":{"code":"bad_request"'),
        (b'"hi"', "text/plain", b'{"error":{"code":"bad_request"'),
    ],
    ids=["plain", "labelled-json", "wrong-type", "invalid-json", "foreign-content-type"],
)
def test_a_bare_json_task_answers_plain_clients_in_json(raw, body, content_type, expected):
    reply = raw.bare_call(body, routing_key=BARE_QUEUE, content_type=content_type)
    assert reply.body.startswith(expected), reply.body
    assert reply.content_type == "application/json"
