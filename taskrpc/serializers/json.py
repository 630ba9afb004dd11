"""JSON, the default serializer: fast (pydantic-core), exact for long integers too."""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic_core

from ..exceptions import LimitExceeded

#: CPython refuses int<->str conversions past this many digits unless told otherwise;
#: pydantic-core parses integers up to the same length itself.
_CHUNK_DIGITS = 4000
_PARSER_DIGITS = 4300
#: Where pydantic-core stopped: ``number out of range at line L column C`` (bytes, 1-based).
_WHERE = re.compile(r"line (\d+) column (\d+)")
_DIGITS = re.compile(rb"[0-9]+")


class JSONSerializer:
    """UTF-8 JSON; integers round-trip exactly within the :attr:`max_int_digits` budget.

    NaN and Infinity are refused on input; on output they become the strings ``"NaN"``
    and ``"Infinity"``, which pydantic reads back as floats.

    Parameters:
        max_int_digits: Most digits of integers longer than 4300 digits (the ones parsed
            by the slow, exact path, whose cost grows with the square of their digits)
            in one body, in total; an app sets it from ``Settings.max_int_digits``.
            A body over it is refused before any long integer is converted.
    """

    name = "json"
    content_type = "application/json"

    def __init__(self, max_int_digits: int = 50_000) -> None:
        self.max_int_digits = max_int_digits

    def dumps(self, data: Any) -> bytes:
        """Encode JSON-compatible ``data``; raise ``ValueError`` for anything else."""
        try:
            return pydantic_core.to_json(data, inf_nan_mode="strings")
        except pydantic_core.PydanticSerializationError as exc:
            raise ValueError(str(exc)) from exc

    def loads(self, body: bytes) -> Any:
        """Decode ``body``; raise ``ValueError`` if it is not valid UTF-8 JSON.

        Raises:
            LimitExceeded: Integers over :attr:`max_int_digits` (``kind``
                ``"IntegerTooLong"``), or nesting past the parser's 200 levels
                (``"NestingTooDeep"``).
        """
        try:
            return pydantic_core.from_json(body, allow_inf_nan=False)
        except ValueError as exc:
            message = str(exc)
            if message.startswith("recursion limit exceeded"):
                raise LimitExceeded(f"nested too deep: {message}", kind="NestingTooDeep") from None
            if "number out of range" not in message:
                raise
        # A long integer: first measure the one the fast parser stopped at (no conversion).
        first = _digits_where(body, message, self.max_int_digits + 1)
        if first is not None and first > self.max_int_digits:
            raise _too_long(self.max_int_digits)
        return self._exact_loads(body)

    def _exact_loads(self, body: bytes) -> Any:
        """The slow, exact path; long integers counted before any is converted."""
        budget = self.max_int_digits
        spent = 0

        def parse_int(digits: str) -> int:
            nonlocal spent
            size = len(digits)
            if size <= _PARSER_DIGITS:
                return int(digits)
            spent += size
            if spent > budget:
                raise _too_long(budget)
            return _big_int(digits)

        try:
            return json.loads(body, parse_int=parse_int, parse_constant=_refuse_constant)
        except RecursionError:
            raise LimitExceeded("nested too deep for the parser", kind="NestingTooDeep") from None


def _digits_where(body: bytes, message: str, cap: int) -> int | None:
    """Digits of the integer pydantic-core's error points into (at most ``cap``), or
    ``None`` if unsure."""
    where = _WHERE.search(message)
    if where is None:
        return None
    line, column = int(where.group(1)), int(where.group(2))
    start = 0
    for _ in range(line - 1):
        if line > 64:
            return None  # not worth scanning for: the exact path counts as it goes
        start = body.find(b"\n", start) + 1
    offset = start + column - 1 - (_PARSER_DIGITS + 1)  # it stops 4301 digits in
    run = _DIGITS.match(body, max(offset, 0), max(offset, 0) + cap)
    return None if run is None or offset < 0 else len(run.group())


def _too_long(budget: int) -> LimitExceeded:
    return LimitExceeded(
        f"integers longer than 4300 digits hold more than {budget} digits in all",
        kind="IntegerTooLong",
    )


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
