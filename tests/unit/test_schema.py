"""``taskrpc schema``: each task's arguments and result as the JSON Schema pydantic gives."""

from __future__ import annotations

import json
from typing import Annotated

import jsonschema
import pydantic
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, Field, TypeAdapter

from taskrpc import App, RetryPolicy, TimeoutPolicy
from taskrpc.cli import EXIT_OK, EXIT_USAGE, cli
from taskrpc.schema import app_schema


class Point(BaseModel):
    x: int
    y: int = 0


app = App("schema-test", default_queue="schema.default")


@app.task(name="move", queue="geometry", idempotent=True, timeouts=TimeoutPolicy(call=5))
def move(point: Point, /, dx: Annotated[int, Field(ge=-10)] = 0, *, label: str = "") -> Point:
    return point


@app.task(
    name="many",
    retry=RetryPolicy(max_retries=2, retry_on=(ConnectionError,)),
    rate_limit="10/s",
    throws=(KeyError,),
)
def many(*values: float, **named: str) -> list[float] | None:
    return None


def run(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["schema", *arguments])
    return result.exit_code, result.output


def test_the_schemas_are_those_pydantic_gives():
    code, output = run("tests.unit.test_schema:app")
    assert code == EXIT_OK, output
    document = json.loads(output)
    assert document["protocol"] == 1 and list(document["tasks"]) == ["many", "move"]
    moved = document["tasks"]["move"]
    expected = pydantic.create_model(
        "move_arguments",
        __config__=pydantic.ConfigDict(extra="forbid"),
        point=(Point, ...),
        dx=(Annotated[int, Field(ge=-10)], 0),
        label=(str, ""),
    ).model_json_schema()
    assert moved["arguments"] == expected
    assert moved["result"] == TypeAdapter(Point).json_schema(mode="serialization")
    assert moved["positional"] == ["point", "dx"]
    assert moved["queue"] == "geometry"
    assert moved["options"]["idempotent"] is True
    assert moved["options"]["timeouts"] == {"call": 5, "soft_limit": None, "hard_limit": None}
    many_ = document["tasks"]["many"]
    assert many_["queue"] == "schema.default"
    assert many_["result"] == TypeAdapter(list[float] | None).json_schema(mode="serialization")
    assert many_["options"]["retry"]["retry_on"] == ["ConnectionError"]
    assert (many_["options"]["rate_limit"], many_["options"]["throws"]) == ("10/s", ["KeyError"])
    assert moved["options"]["priority"] is None and moved["options"]["ignore_result"] is False


def test_a_client_can_validate_calls_with_them():
    code, output = run("tests.unit.test_schema:app", "--task", "move")
    assert code == EXIT_OK
    (schema,) = json.loads(output)["tasks"].values()
    arguments = schema["arguments"]
    jsonschema.validate({"point": {"x": 1}, "dx": 3}, arguments)
    for bad in ({"point": {"x": "one"}}, {"point": {"x": 1}, "dx": -11}, {"dx": 1}, {"other": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, arguments)
    jsonschema.validate({"x": 1, "y": 2}, schema["result"])


def test_the_reference_task():
    document = app_schema(__import__("taskrpc.fibonacci").fibonacci.app, "fib")
    fib = document["tasks"]["fib"]
    assert fib["arguments"]["properties"]["n"] == {
        "maximum": 100000,
        "minimum": 0,
        "title": "N",
        "type": "integer",
    }
    assert fib["result"] == {"type": "integer"}


def test_an_unknown_task_is_a_usage_error():
    code, output = run("tests.unit.test_schema:app", "--task", "nope")
    assert code == EXIT_USAGE
    assert "no task 'nope'" in output and "many, move" in output


def test_the_protocol_page_shows_what_the_command_prints():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "protocol.rst").read_text()
    shown = page.split("$ taskrpc schema taskrpc.fibonacci:app --task fib\n", 1)[1]
    shown = shown.split("\n\n", 1)[0]
    code, output = run("taskrpc.fibonacci:app", "--task", "fib")
    assert code == EXIT_OK
    assert json.loads(shown) == json.loads(output)
