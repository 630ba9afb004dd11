"""The canonical text a signature covers: compact JSON with one spelling for each value.

``docs/protocol.rst`` (section *Signing*) specifies it for other implementations, and
``conformance/signing.json`` holds its test vectors; keep the three in step.

* Objects: members sorted by key (Unicode code point order), ``{"k":v,...}``, no spaces.
* Strings: ``"`` and ``\\`` escaped with a backslash; ``\\b \\f \\n \\r \\t`` as such;
  every other character outside U+0020..U+007E as ``\\u`` and four lowercase hex
  digits (a UTF-16 surrogate pair above U+FFFF).
* Integers: decimal digits, ``-`` for negatives, no exponent.
* Floats (finite only): the shortest digit string that reads back as the same double,
  written positionally when its decimal exponent is in ``[-4, 16)`` (with ``.0`` if it
  has no fraction), else as ``d[.ddd]e±XX`` with at least two exponent digits: exactly
  Python's ``repr(float)``.
* ``true``, ``false``, ``null``; arrays as ``[a,b]``.

The time headers (``FLOAT_HEADERS``) are written as floats whatever their AMQP type
(an integer ``1795769892`` as ``1795769892.0``), so that a reader whose AMQP library maps
integers and doubles to one number type can rebuild the text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

#: Headers whose value is always written in float form: the times, in seconds since the
#: epoch (a deadline, when it was signed, when it was sent, a periodic request's tick).
FLOAT_HEADERS = frozenset(
    {"taskrpc-deadline", "taskrpc-signed-at", "taskrpc-sent-at", "taskrpc-tick"}
)
#: The header that carries the signature itself, never covered.
SIGNATURE_HEADER = "taskrpc-signature"


def canonical_json(value: Any) -> str:
    """The canonical text of ``value`` (strings, numbers, booleans, ``None``, lists, maps).

    Raises:
        TypeError: A value of another type (bytes, decimals, dates...), or a map key that
            is not a string.
        ValueError: A float that is NaN or infinite.
    """
    _check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def covered_fields(
    kind: str,
    content_type: str | None,
    content_encoding: str | None,
    correlation_id: str | None,
    reply_to: str | None,
    routing_key: str | None,
    headers: Mapping[str, Any],
) -> dict[str, Any]:
    """The map a signature covers besides the body (see the module docstring)."""
    covered: dict[str, Any] = {}
    for name, value in headers.items():
        name = str(name)
        if not name.startswith("taskrpc-") or name == SIGNATURE_HEADER:
            continue
        if name in FLOAT_HEADERS and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        covered[name] = value
    return {
        "kind": kind,
        "content_type": content_type or "",
        "content_encoding": content_encoding or "",
        "correlation_id": correlation_id or "",
        "reply_to": reply_to or "",
        "routing_key": routing_key or "",
        "headers": covered,
    }


def _check(value: Any) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no canonical form")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"map key {key!r} is not a string")
            _check(item)
        return
    raise TypeError(f"a value of type {type(value).__name__} has no canonical form")
