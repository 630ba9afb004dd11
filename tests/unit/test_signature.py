"""Type hints as the task contract: validation, coercion, models, results."""

from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from taskrpc.exceptions import InvalidArguments
from taskrpc.signature import Signature


class Point(BaseModel):
    x: int
    y: int


def move(point: Point, dx: int = 0, *, scale: float = 1.0) -> Point:
    return Point(x=int((point.x + dx) * scale), y=point.y)


def test_arguments_are_coerced_to_the_annotated_types():
    args, kwargs = Signature(move).validate([{"x": "1", "y": 2}, "3"], {"scale": "2"})
    assert args == [Point(x=1, y=2), 3] and kwargs == {"scale": 2.0}


def test_an_invalid_argument_names_the_field():
    with pytest.raises(InvalidArguments) as info:
        Signature(move).validate([{"x": "one", "y": 2}], {})
    assert info.value.errors()[0]["loc"] == ["point", "x"]
    assert "point.x" in str(info.value)


def test_missing_and_extra_arguments_are_invalid():
    with pytest.raises(InvalidArguments, match="missing"):
        Signature(move).validate([], {})
    with pytest.raises(InvalidArguments, match="unexpected keyword"):
        Signature(move).validate([{"x": 1, "y": 1}], {"nope": 1})
    with pytest.raises(InvalidArguments, match="too many"):
        Signature(move).validate([{"x": 1, "y": 1}, 1, 2], {})


def test_constraints_from_annotated_fields_apply():
    def f(n: Annotated[int, Field(ge=0)]) -> int:
        return n

    with pytest.raises(InvalidArguments, match="greater than or equal to 0"):
        Signature(f).validate([-1], {})


def test_var_positional_and_var_keyword_are_validated():
    def f(*values: int, **named: float) -> int:
        return 0

    args, kwargs = Signature(f).validate(["1", 2], {"a": "1.5"})
    assert args == [1, 2] and kwargs == {"a": 1.5}


def test_results_round_trip_through_json_data_to_the_declared_model():
    signature = Signature(move)
    data = signature.dump_result(Point(x=1, y=2))
    assert data == {"x": 1, "y": 2}
    assert signature.load_result(data) == Point(x=1, y=2)


def test_a_result_of_the_wrong_type_fails_validation():
    import pydantic

    with pytest.raises(pydantic.ValidationError):
        Signature(move).dump_result("not a point")


def test_unannotated_functions_accept_anything():
    def f(a, b=1):
        return a

    assert Signature(f).validate([[1, 2]], {}) == ([[1, 2]], {})


def test_nan_and_infinity_results_travel_as_strings_and_come_back_as_floats():
    import math

    def f() -> float:
        return 0.0

    from taskrpc.messages import ReplyBody
    from taskrpc.serializers import default_registry

    signature = Signature(f)
    reply = ReplyBody(ok=True, result=signature.dump_result(float("-inf")))
    body = default_registry().by_name("json").dumps(reply.model_dump(mode="json"))
    assert body == b'{"ok":true,"result":"-Infinity","error":null}'
    assert signature.load_result("-Infinity") == float("-inf")
    assert math.isnan(signature.load_result("NaN"))
