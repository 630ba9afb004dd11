"""JSON, the default serializer: fast (pydantic-core), exact for integers of any size."""

from __future__ import annotations

import json
from typing import Any

import pydantic_core

#: CPython refuses int<->str conversions past this many digits unless told otherwise.
_CHUNK_DIGITS = 4000


class JSONSerializer:
    """UTF-8 JSON; integers of any size round-trip exactly.

    NaN and Infinity are refused on input; on output they become the strings ``"NaN"``
    and ``"Infinity"``, which pydantic reads back as floats.
    """

    name = "json"
    content_type = "application/json"

    def dumps(self, data: Any) -> bytes:
        """Encode JSON-compatible ``data``; raise ``ValueError`` for anything else."""
        try:
            return pydantic_core.to_json(data, inf_nan_mode="strings")
        except pydantic_core.PydanticSerializationError as exc:
            raise ValueError(str(exc)) from exc

    def loads(self, body: bytes) -> Any:
        """Decode ``body``; raise ``ValueError`` if it is not valid UTF-8 JSON."""
        try:
            return pydantic_core.from_json(body, allow_inf_nan=False)
        except ValueError as exc:
            if "number out of range" not in str(exc):
                raise
        # pydantic-core stops at CPython's 4300-digit int limit: the slow path is exact.
        return json.loads(body, parse_int=_big_int, parse_constant=_refuse_constant)


def _big_int(digits: str) -> int:
    """``int(digits)`` without CPython's digit limit, in chunks it accepts."""
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    value = 0
    for start in range(0, len(digits), _CHUNK_DIGITS):
        chunk = digits[start : start + _CHUNK_DIGITS]
        value = value * 10 ** len(chunk) + int(chunk)
    return sign * value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")
