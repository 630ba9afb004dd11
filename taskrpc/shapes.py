"""What a task's argument schema says about the requests worth decoding and checking.

Read from the pydantic core schema of a task's arguments model, once per task:

* :func:`element_bound`: for a task whose parameters are all scalars (numbers, strings,
  booleans, dates, UUIDs, enums, literals, optionals and unions of them), the most
  arrays, objects and items a valid request can hold; the worker refuses a body holding
  more before it is parsed, so a megabyte of tiny arrays sent to ``add(a: int, b: int)``
  costs one scan of its bytes, not its decoding. ``None`` for any other task.
* :func:`fail_fast_validator`: a validator of the same schema whose arrays, tuples, sets
  and objects stop at their first invalid item. A refused call then costs one error per
  parameter, not one per item: 100,000 strings where a ``list[int]`` is declared were
  100,000 errors, and seconds of CPU to describe them. Whether a call is valid does not
  change, only how many of its errors are reported.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
import pydantic_core

#: Core schema types of scalar values: none of them accepts an array or an object.
_SCALARS = frozenset(
    {"none", "bool", "int", "float", "decimal", "complex", "str", "bytes", "date", "time",
     "datetime", "timedelta", "uuid", "url", "multi-host-url"}
)  # fmt: skip
#: Schemas that wrap the one under ``schema`` without changing what input it takes.
_WRAPPERS = frozenset({"nullable", "default", "function-after"})
#: Schemas whose length a validator can stop counting errors in at the first.
_COLLECTIONS = frozenset({"list", "tuple", "set", "frozenset", "dict"})
#: Keys of a core schema that hold values, not schemas (a default may be any dict).
_NOT_SCHEMAS = frozenset(
    {"default", "metadata", "expected", "members", "serialization", "config", "cls", "ref"}
)
_SCALAR_VALUES = (str, int, float, bool, type(None))
#: Elements of a request besides its arguments' own, with room to spare: the body object,
#: ``args``, ``kwargs`` and the comma between them.
_ENVELOPE = 8


def element_bound(model: type[pydantic.BaseModel]) -> int | None:
    """The most elements a valid request for arguments ``model`` holds, if all its fields
    are scalars; else ``None``.

    Each argument is at most one item and one separating comma (in ``args`` or in
    ``kwargs``); a body holding more is refused whatever its arguments are, since no
    scalar parameter accepts an array or an object and each takes one value.
    """
    fields = _fields(model.__pydantic_core_schema__)
    if fields is None or not all(_scalar(field.get("schema")) for field in fields.values()):
        return None
    return 2 * len(fields) + _ENVELOPE


def fail_fast_validator(
    model: type[pydantic.BaseModel],
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A function validating arguments by name against ``model``, returning them
    validated by name; its collections report only their first invalid item.

    The model's fields are validated directly: pydantic reuses a model's own validator
    wherever the model appears, so a model's fields, arrays included, report as ever.
    """
    schema: Any = model.__pydantic_core_schema__
    definitions = None
    if isinstance(schema, dict) and schema.get("type") == "definitions":
        definitions, schema = schema.get("definitions"), schema.get("schema")
    if _fields(schema) is None:  # not the plain shape: the model's own validation
        return lambda arguments: dict(model.model_validate(arguments).__dict__)
    inner = _with_fail_fast(schema["schema"])
    if definitions:
        definitions = _with_fail_fast(definitions)
        inner = {"type": "definitions", "schema": inner, "definitions": definitions}
    validator = pydantic_core.SchemaValidator(inner, schema.get("config"))

    def validate(arguments: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = validator.validate_python(arguments)[0]
        return values

    return validate


def _fields(schema: Any) -> dict[str, Any] | None:
    """The fields of a model's core schema, or ``None`` if it is not the plain shape."""
    if not isinstance(schema, dict) or schema.get("type") != "model":
        return None
    inner = schema.get("schema")
    if not isinstance(inner, dict) or inner.get("type") != "model-fields":
        return None
    fields = inner.get("fields")
    return fields if isinstance(fields, dict) else None


def _scalar(schema: Any) -> bool:
    """Whether input valid for ``schema`` is always a single scalar value."""
    while isinstance(schema, dict) and schema.get("type") in _WRAPPERS:
        schema = schema.get("schema")
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    if kind in _SCALARS:
        return True
    if kind == "literal":
        return all(type(value) in _SCALAR_VALUES for value in schema.get("expected", [None]))
    if kind == "enum":
        members = schema.get("members") or [None]
        return all(isinstance(m, enum.Enum) and type(m.value) in _SCALAR_VALUES for m in members)
    if kind == "union":
        choices = schema.get("choices") or [None]
        return all(_scalar(c[0] if isinstance(c, tuple) else c) for c in choices)
    if kind in ("json-or-python", "lax-or-strict"):
        parts = ("json_schema", "python_schema", "lax_schema", "strict_schema")
        return all(_scalar(schema[part]) for part in parts if part in schema)
    return False  # any, functions before or around, models, instances: anything goes


def _with_fail_fast(schema: Any) -> Any:
    """A copy of a core schema with ``fail_fast`` set on every collection in it."""
    if isinstance(schema, list):
        return [_with_fail_fast(item) for item in schema]
    if isinstance(schema, tuple):
        return tuple(_with_fail_fast(item) for item in schema)
    if not isinstance(schema, dict):
        return schema
    copy = {
        key: value if key in _NOT_SCHEMAS else _with_fail_fast(value)
        for key, value in schema.items()
    }
    if isinstance(copy.get("type"), str) and copy["type"] in _COLLECTIONS:
        copy["fail_fast"] = True
    return copy
