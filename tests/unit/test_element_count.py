"""The compiled count of a JSON body's elements (``taskrpc._jsonscan``) against the
pure-Python one it replaces where it is built: the same answer on any valid JSON, and no
crash, hang or out-of-range answer on any bytes at all."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskrpc import App, budgets
from taskrpc.budgets import ELEMENT_COUNT, count_json_elements
from taskrpc.messages import ReplyBody
from taskrpc.worker.executor import Job, execute

from .test_element_budget import marks  # what the budget counts, from decoded JSON

compiled = pytest.importorskip("taskrpc._jsonscan") if not os.environ.get("CI") else None
if compiled is None:  # in CI the module must be there: a missing build fails, not skips
    import taskrpc._jsonscan as compiled

count_elements = compiled.count_elements

TRICKY = st.text(alphabet='[]{},:"\\/ \n\tabu0\u00e9\u2028\U0001f600', max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(TRICKY, inner, max_size=6),
    max_leaves=60,
)


def test_ci_runs_the_compiled_count():
    if os.environ.get("CI"):
        assert ELEMENT_COUNT == "compiled", "setup.py did not build taskrpc._jsonscan"


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES, st.integers(min_value=0, max_value=80), st.booleans(), st.booleans())
def test_the_compiled_count_is_exact_and_refuses_what_python_refuses(
    value, limit, ascii_only, spaced
):
    separators = (", ", ": ") if spaced else (",", ":")
    body = json.dumps(value, ensure_ascii=ascii_only, separators=separators).encode()
    fast = count_elements(body, limit)
    assert fast == min(marks(value), limit + 1)
    # The Python count is exact only past the limit (below, strings may add to it).
    assert (fast > limit) == (count_json_elements(body, limit) > limit)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | st.text(alphabet='[{,"\\x ', max_size=300).map(str.encode))
def test_any_bytes_get_an_answer_in_range(body):
    for limit in (0, 3, 1000):
        count = count_elements(body, limit)
        assert -1 <= count <= limit + 1
        assert count_elements(bytearray(body), limit) == count
        assert count_elements(memoryview(body), limit) == count


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", 0),
        (b"[1,2,[3,{}]]", 6),
        (b'["a,b\\\\","c\\"d,",1]', 3),  # an escaped backslash, then an escaped quote
        (b'["\\\\\\"",1]', 2),  # three backslashes: the quote after them is escaped
        (b'"\\', -1),  # a backslash at the very end escapes nothing: still in the string
        (b'["abc', -1),
        (b"[[[[[", 3),  # counting stops one past the limit of 2
    ],
)
def test_counts(body, expected):
    assert count_elements(body, 2 if body == b"[[[[[" else 100) == expected


def test_a_negative_limit_is_refused():
    with pytest.raises(ValueError):
        count_elements(b"[]", -1)


def test_a_body_ending_inside_a_string_is_a_decode_error_before_parsing(monkeypatch):
    app = App("count", broker_url="memory://")

    @app.task(name="size")
    def size(blob: str) -> int:
        return len(blob)

    body = b'{"args": ["' + b'a,b\\"' * 20_000
    monkeypatch.setattr(budgets, "_compiled_count", count_elements)
    outcome = execute(app, Job("r1", "size", body, "application/json"))
    reply = ReplyBody.model_validate(json.loads(outcome.body))
    assert (reply.error.code, reply.error.type) == ("bad_request", "DecodeError")
    assert "inside a string" in reply.error.message
    monkeypatch.setattr(budgets, "_compiled_count", None)  # the parser says so too
    outcome = execute(app, Job("r1", "size", body, "application/json"))
    reply = ReplyBody.model_validate(json.loads(outcome.body))
    assert (reply.error.code, reply.error.type) == ("bad_request", "DecodeError")
