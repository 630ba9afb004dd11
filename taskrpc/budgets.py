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
``TooManyHeaders``     ``max_headers``              before the signature and the body
``HeadersTooLarge``    ``max_header_bytes``         before the signature and the body
=====================  ===========================  =====================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .exceptions import LimitExceeded

#: Nesting JSON's parser (pydantic-core) refuses by itself, at no cost.
JSON_PARSER_DEPTH = 200
_CONTAINERS = (list, dict, tuple)
#: Size counted for a header value that is not a string, bytes or container.
_SCALAR_SIZE = 9


def check_depth(data: Any, limit: int) -> None:
    """Refuse ``data`` nested deeper than ``limit`` (arrays and objects; a scalar is 0).

    Iterative and level by level, so it costs one pass over the containers and never
    recurses, however deep the data.

    Raises:
        LimitExceeded: ``kind`` ``"NestingTooDeep"``.
    """
    level = [data] if type(data) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise LimitExceeded(
                f"arrays and objects nested deeper than {limit} levels", kind="NestingTooDeep"
            )
        below: list[Any] = []
        for item in level:
            values = item.values() if type(item) is dict else item
            if not {list, dict, tuple}.isdisjoint(map(type, values)):
                below.extend(value for value in values if type(value) in _CONTAINERS)
        level = below


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
