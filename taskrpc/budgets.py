"""Decode budgets: cheap checks that bound what one received message can cost.

A message under the size limit can still be expensive: an integer of millions of digits
(converting one costs time in the square of its digits), arrays nested past what the
libraries below recurse through, or hundreds of headers. Each budget is checked before
the expensive work and refused with :exc:`~taskrpc.LimitExceeded`, whose ``kind`` the
worker sends back as the ``type_name`` of a ``bad_request`` error:

=====================  ===========================  =====================================
``kind``               setting                      checked
=====================  ===========================  =====================================
``PayloadTooLarge``    ``max_message_size``         body size, before decompression and
                                                    while inflating
``IntegerTooLong``     ``max_int_digits``           by the serializer, before converting
``NestingTooDeep``     ``max_nesting_depth``        by JSON's parser (200), else after
                                                    decoding, before validation
``TooManyElements``    ``max_elements``             JSON: by a scan of the bytes, before
                                                    parsing; msgpack: while decoding;
                                                    others: after decoding
``TooManyHeaders``     ``max_headers``              before the signature and the body
``HeadersTooLarge``    ``max_header_bytes``         before the signature and the body
=====================  ===========================  =====================================
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from .exceptions import LimitExceeded

_compiled_count: Callable[[bytes, int], int] | None
try:  # the compiled count (setup.py builds it where it can); else the one below
    from ._jsonscan import count_elements as _compiled_count
except ImportError:  # pragma: no cover - depends on the install
    _compiled_count = None

#: Which count of JSON elements this process runs: ``"compiled"`` or ``"python"``.
ELEMENT_COUNT = "python" if _compiled_count is None else "compiled"

#: Nesting JSON's parser (pydantic-core) refuses by itself, at no cost.
JSON_PARSER_DEPTH = 200
_CONTAINERS = (list, dict, tuple)
#: Size counted for a header value that is not a string, bytes or container.
_SCALAR_SIZE = 9
#: The bytes of JSON text counted as elements: one per array and object, one per item
#: after the first (which is never more than the arrays, objects and items there are).
_JSON_MARKS = b"[{,"


def too_many_elements(limit: int) -> LimitExceeded:
    """The refusal of a body holding more than ``limit`` elements."""
    return LimitExceeded(
        f"more than {limit} arrays, objects and items in one body (max_elements)",
        kind="TooManyElements",
    )


def check_json_elements(body: bytes, limit: int) -> None:
    """Refuse a JSON ``body`` holding more than ``limit`` elements, before it is parsed.

    Elements are counted as the ``[``, ``{`` and ``,`` outside strings, only for a body
    longer than ``limit`` bytes, so a long string full of commas or brackets still
    passes: valid JSON is refused only when it really holds more. The compiled count
    (:data:`ELEMENT_COUNT`) is one pass over the bytes, stepping over strings from quote
    to quote; the pure-Python one sets strings aside only when its plain count is over.

    Raises:
        LimitExceeded: ``kind`` ``"TooManyElements"``.
        ValueError: The body ends inside a string (found by the compiled count only; the
            parser finds it otherwise).
    """
    if len(body) <= limit:  # every element takes a byte
        return
    if _compiled_count is not None:
        count = _compiled_count(body, limit)
        if count < 0:
            raise ValueError("unterminated string: the body ends inside a string")
    else:
        count = count_json_elements(body, limit)
    if count > limit:
        raise too_many_elements(limit)


def count_json_elements(body: bytes, limit: int) -> int:
    """The elements of JSON ``body`` as the budget counts them, in Python (the compiled
    count's fallback): its ``[``, ``{`` and ``,`` outside strings when there are more
    than ``limit`` (or any number over ``limit`` when there are surely more); else a
    count of them strings included, which is then not over ``limit`` either."""
    count = _marks(body)
    if count > limit and b'"' in body:
        count = _marks_outside_strings(body, count, limit)
    return count


def _marks(text: bytes) -> int:
    return len(text) - len(text.translate(None, _JSON_MARKS))


def _marks_outside_strings(body: bytes, count: int, limit: int) -> int:
    """The elements of ``body`` (``count`` with those in strings) counted outside its
    strings, or ``limit + 1`` if there are surely more than ``limit``.

    In valid JSON a backslash only ever opens an escape inside a string, so blanking the
    escaped backslashes and then the escaped quotes, left to right as a parser reads
    them, leaves exactly the quotes that open and close strings.
    """
    if b"\\" in body:  # (blanked in place: no mark goes, ``count`` holds)
        body = body.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    # Each string is an array item, an object key or a key's value: each item and key
    # follows its own counted mark (or opens the body), so there are at most two strings
    # per mark, plus one. More quotes than that: surely over, with no need to look on.
    most = 4 * limit + 2
    parts = body.split(b'"', most)
    if len(parts) > most and b'"' in parts[-1]:
        return limit + 1
    inside = parts[1::2]
    if sum(map(len, inside)) < len(body) // 2:
        return count - _marks(b"".join(inside))
    return _marks(b"".join(parts[::2]))


def check_shape(data: Any, max_depth: int, max_elements: int) -> None:
    """Refuse ``data`` nested deeper than ``max_depth`` (arrays and objects; a scalar is
    0), or holding more than ``max_elements`` arrays, objects and items in all.

    Iterative and level by level, so it costs one pass over the containers and never
    recurses, however deep the data. For serializers whose parser does not bound these
    itself: it runs after decoding, before validation.

    Raises:
        LimitExceeded: ``kind`` ``"NestingTooDeep"`` or ``"TooManyElements"``.
    """
    level = [data] if type(data) in _CONTAINERS else []
    depth = elements = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise LimitExceeded(
                f"arrays and objects nested deeper than {max_depth} levels",
                kind="NestingTooDeep",
            )
        below: list[Any] = []
        for item in level:
            elements += 1 + len(item)
            values = item.values() if type(item) is dict else item
            if not {list, dict, tuple}.isdisjoint(map(type, values)):
                below.extend(value for value in values if type(value) in _CONTAINERS)
        if elements > max_elements:
            raise too_many_elements(max_elements)
        level = below


def load_within(serializer: Any, body: bytes, max_depth: int, max_elements: int | None) -> Any:
    """``serializer.loads(body)`` within the nesting and element budgets.

    Elements (``None``: not counted) are counted before parsing for JSON, while decoding
    by a serializer that offers ``loads_within(body, max_elements)`` (msgpack), and after
    decoding for the others; nesting by JSON's parser up to its 200 levels, else after
    decoding.

    Raises:
        LimitExceeded: ``kind`` ``"TooManyElements"`` or ``"NestingTooDeep"`` (or a
            serializer's own budget).
        ValueError: The serializer's, for a malformed body.
    """
    json = serializer.name == "json"
    try:
        if json and max_elements is not None:
            check_json_elements(body, max_elements)
            data = serializer.loads(body)
        elif max_elements is not None and hasattr(serializer, "loads_within"):
            data = serializer.loads_within(body, max_elements)
        else:
            data = serializer.loads(body)
    except RecursionError:  # a plug-in's parser, recursing
        raise LimitExceeded("nested too deep for the parser", kind="NestingTooDeep") from None
    if not json or max_depth < JSON_PARSER_DEPTH:
        check_shape(data, max_depth, sys.maxsize if max_elements is None else max_elements)
    return data


def check_headers(headers: Mapping[str, Any], *, max_count: int, max_bytes: int) -> None:
    """Refuse more than ``max_count`` headers, or more than ``max_bytes`` of them (names,
    strings and bytes by length, other values 9 bytes each, nested tables and arrays
    included).

    Raises:
        LimitExceeded: ``kind`` ``"TooManyHeaders"`` or ``"HeadersTooLarge"``.
    """
    if len(headers) > max_count:
        raise LimitExceeded(
            f"{len(headers)} headers, more than the {max_count} allowed", kind="TooManyHeaders"
        )
    size, stack = 0, [headers]  # mappings, lists and tuples still to measure
    while stack:
        item = stack.pop()
        pairs = item.items() if isinstance(item, Mapping) else ((b"", v) for v in item)
        for name, value in pairs:
            size += len(name)
            if isinstance(value, (str, bytes, bytearray)):
                size += len(value)
            elif isinstance(value, (Mapping, list, tuple)):
                stack.append(value)  # type: ignore[arg-type]  # any container
                size += 1
            else:
                size += _SCALAR_SIZE
            if size > max_bytes:
                raise LimitExceeded(
                    f"headers larger than the {max_bytes} bytes allowed", kind="HeadersTooLarge"
                )
