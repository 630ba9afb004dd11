"""The element budget: a body of many tiny arrays is refused before it is parsed, cheaply,
and a legitimate large request is not.

Before the budget, 4 MiB of well-formed ``[[], [], ...]`` sent to ``add(a: int, b: int)``
cost the worker some 370 ms of CPU to refuse (decoding a million lists, then validating).
"""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any, Literal

import pydantic
import pydantic_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskrpc import App, LimitExceeded, Settings, budgets
from taskrpc.budgets import check_json_elements
from taskrpc.messages import ReplyBody
from taskrpc.signature import Signature
from taskrpc.worker.executor import Job, execute

LIMIT = 4 * 1024 * 1024
JSON, MSGPACK = "application/json", "application/x-msgpack"

app = App("elements", broker_url="memory://")
app.codec.accept("msgpack")


@app.task(name="add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="size")
def size(blob: str) -> int:
    return len(blob)


@app.task(name="total")
def total(values: list[int]) -> int:
    return sum(values)


@pytest.fixture(autouse=True, params=["compiled", "python"])
def element_count(request, monkeypatch):
    """Every test here runs with the compiled count (where built) and the Python one."""
    if request.param == "python":
        monkeypatch.setattr(budgets, "_compiled_count", None)
    elif budgets.ELEMENT_COUNT != "compiled":
        pytest.skip("taskrpc._jsonscan is not built here")  # CI fails on that elsewhere
    return request.param


@pytest.fixture
def parsed(monkeypatch):
    """The bodies JSON's parser was given (what the cost of a refusal is measured by in
    ``benchmarks/refusal_cost.py``; here, whether the body was parsed at all)."""
    bodies: list[bytes] = []
    real = pydantic_core.from_json

    def from_json(data, **options):
        bodies.append(data)
        return real(data, **options)

    monkeypatch.setattr(pydantic_core, "from_json", from_json)  # as the serializer calls it
    return bodies


def run(task: str, body: bytes, content_type: str = JSON) -> ReplyBody:
    """The reply to ``body``."""
    outcome = execute(app, Job("r1", task, body, content_type))
    if outcome.content_type == JSON:  # read here without the parser ``parsed`` watches
        return ReplyBody.model_validate(json.loads(outcome.body))
    serializer = app.serializers.for_content_type(outcome.content_type, {outcome.content_type})
    return ReplyBody.model_validate(serializer.loads(outcome.body))


def tiny_arrays(head: bytes = b'{"args": [[', tail: bytes = b"[]], 1]}") -> bytes:
    return head + b"[]," * ((LIMIT - 40) // 3) + tail


# -- refused, cheaply -------------------------------------------------------------------------


def test_4_mib_of_tiny_arrays_for_an_int_is_refused_before_parsing(parsed):
    reply = run("add", tiny_arrays())  # 370 ms of CPU to refuse, before the budget
    assert (reply.error.code, reply.error.type) == ("bad_request", "TooManyElements")
    assert "the arguments of 'add'" in reply.error.message
    assert parsed == []


def test_4_mib_of_tiny_arrays_for_a_list_is_refused_by_the_general_budget(parsed):
    reply = run("total", tiny_arrays(tail=b"[]]]}"))
    assert (reply.error.code, reply.error.type) == ("bad_request", "TooManyElements")
    assert "max_elements" in reply.error.message
    assert parsed == []


def test_4_mib_of_tiny_msgpack_arrays_is_refused_while_decoding():
    count = LIMIT - 20
    body = b"\x81\xa4args\x91\xdd" + count.to_bytes(4, "big") + b"\x90" * count
    reply = run("total", body, MSGPACK)  # a million lists cost a second, before
    assert (reply.error.code, reply.error.type) == ("bad_request", "TooManyElements")


def test_a_msgpack_array_announced_over_the_budget_is_refused_at_its_header():
    body = b"\x81\xa4args\x91\xdd\xff\xff\xff\xff" + b"\x00" * 30_000
    reply = run("total", body, MSGPACK)
    assert reply.error.type == "TooManyElements"


def test_a_bad_item_in_a_long_list_is_one_error_not_one_per_item():
    body = b'{"args": [[' + b'"x",' * 19_000 + b'"x"]]}'
    reply = run("total", body)
    assert (reply.error.code, reply.error.type) == ("invalid_arguments", "ValidationError")
    assert len(reply.error.details) == 1


# -- legitimate large requests still pass --------------------------------------------------


def test_a_4_mib_string_full_of_brackets_commas_and_escapes_passes():
    text = '[{"a": [1, 2]}, "\\\\", ' * ((LIMIT - 100) // 32)
    body = json.dumps({"args": [text]}).encode()
    assert len(body) < LIMIT and body.count(b",") > 100_000
    reply = run("size", body)
    assert reply.ok and reply.result == len(text)


def test_a_list_just_under_the_budget_passes():
    values = list(range(app.settings.max_elements - 10))
    reply = run("total", json.dumps({"args": [values]}).encode())
    assert reply.ok and reply.result == sum(values)
    packed = app.codec.encode({"args": [values]}, "msgpack").body
    reply = run("total", packed, MSGPACK)
    assert reply.ok and reply.result == sum(values)


def test_the_budget_is_a_setting_and_replies_are_not_counted(monkeypatch):
    monkeypatch.setenv("TASKRPC_MAX_ELEMENTS", "100")
    small = App("small", broker_url="memory://")
    assert small.settings.max_elements == 100 == small.codec.max_elements
    body = json.dumps({"args": [list(range(200))]}).encode()
    with pytest.raises(LimitExceeded) as info:
        small.codec.decode(body, JSON)
    assert info.value.kind == "TooManyElements"
    assert small.codec.decode(body, JSON, side="reply") == {"args": [list(range(200))]}
    assert Settings().max_elements == 20_000


# -- the count itself --------------------------------------------------------------------------


def marks(value: Any) -> int:
    """What the budget counts of decoded JSON: each array and object, each item after
    its first."""
    if isinstance(value, (list, dict)):
        items = list(value.values()) if isinstance(value, dict) else value
        return 1 + max(len(items) - 1, 0) + sum(marks(item) for item in items)
    return 0


TRICKY = st.text(alphabet='[]{},:"\\ \n\tab\u00e9\u2028', max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TRICKY, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.integers(min_value=0, max_value=40), st.booleans())
def test_the_byte_count_is_exact_outside_strings(value, limit, ascii_only):
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    if marks(value) > limit:
        with pytest.raises(LimitExceeded):
            check_json_elements(body, limit)
    else:
        check_json_elements(body, limit)  # never refuses what does not hold more


def test_an_object_of_string_members_has_as_many_strings_as_the_bound_allows():
    members = 500
    body = json.dumps({f"k[{i},": "v{," for i in range(members)}).encode()
    check_json_elements(body, members)  # one brace, 499 commas: 500, and 1,000 strings
    with pytest.raises(LimitExceeded):
        check_json_elements(body, members - 1)


# -- what a signature bounds -------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


class Point(pydantic.BaseModel):
    x: int


def _bound(fn: Any) -> int | None:
    return Signature(fn).element_bound


def test_tasks_of_scalars_bound_their_requests_and_others_do_not():
    def scalars(a: int, b: str | None = None, c: Literal["x", 1] = "x", d: Colour = Colour.RED,
                e: Annotated[float, pydantic.Field(gt=0)] = 1.0) -> None: ...  # fmt: skip

    def before(a: Annotated[int, pydantic.BeforeValidator(len)]) -> None: ...

    assert _bound(scalars) == 2 * 5 + 8
    assert _bound(add) == 12
    for fn in (total, before):
        assert _bound(fn) is None
    assert _bound(lambda a: a) is None  # unannotated: anything
    assert Signature(lambda *args: None).element_bound is None

    def model(p: Point) -> None: ...

    assert _bound(model) is None
