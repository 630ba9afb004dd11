"""MessagePack (``pip install taskrpc[msgpack]``): compact and fast; integers of any size.

Integers beyond 64 bits travel as extension type 1 (two's complement, big-endian), so
they round-trip exactly between taskrpc peers.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..budgets import too_many_elements
from ..exceptions import ConfigurationError, LimitExceeded

#: msgpack extension type code of integers wider than 64 bits.
EXT_BIG_INT = 1


class MsgpackSerializer:
    """MessagePack; ``msgpack`` is imported on first use, not with taskrpc."""

    name = "msgpack"
    content_type = "application/x-msgpack"

    def __init__(self, max_int_digits: int = 50_000) -> None:
        self._module: Any = None
        #: Longest big integer accepted on input, in decimal digits (an app sets it from
        #: ``Settings.max_int_digits``): printing a longer one costs its square.
        self.max_int_digits = max_int_digits

    def dumps(self, data: Any) -> bytes:
        """Encode JSON-compatible ``data``; raise ``ValueError`` for anything else."""
        msgpack = self._msgpack()
        try:
            return msgpack.packb(data, use_bin_type=True)  # type: ignore[no-any-return]
        except OverflowError:  # an integer wider than 64 bits, somewhere
            return msgpack.packb(_wrap_big_ints(msgpack, data), use_bin_type=True)  # type: ignore[no-any-return]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cannot encode as msgpack: {exc}") from exc

    def loads(self, body: bytes) -> Any:
        """Decode ``body``; raise ``ValueError`` if it is not exactly one msgpack value."""
        return self.loads_within(body, None)

    def loads_within(self, body: bytes, max_elements: int | None) -> Any:
        """:meth:`loads`, refusing more than ``max_elements`` arrays, maps and items as it
        goes: no array or map announcing more is built, and decoding stops at the
        container that takes the count over (``None``: not counted).

        Raises:
            LimitExceeded: ``kind`` ``"TooManyElements"``, ``"NestingTooDeep"`` or
                ``"IntegerTooLong"``.
        """
        msgpack = self._msgpack()
        options: dict[str, Any] = {}
        if max_elements is not None and len(body) > max_elements:  # each takes a byte
            count = _Count(max_elements)
            options = dict(max_array_len=max_elements, max_map_len=max_elements,
                           list_hook=count, object_hook=count)  # fmt: skip
        try:
            return msgpack.unpackb(
                body, raw=False, strict_map_key=True, ext_hook=self._unwrap, **options
            )
        except ValueError as exc:
            if type(exc).__name__ == "StackError":  # its C parser's own nesting limit
                raise LimitExceeded(f"nested too deep: {exc}", kind="NestingTooDeep") from None
            if options and " exceeds max_" in str(exc):  # an array or map announced larger
                raise too_many_elements(options["max_array_len"]) from None
            raise
        except Exception as exc:  # OutOfData and friends are not ValueErrors
            raise ValueError(f"malformed msgpack: {type(exc).__name__}: {exc}") from exc

    def _unwrap(self, code: int, data: bytes) -> Any:
        if code != EXT_BIG_INT:
            raise ValueError(f"unknown msgpack extension type {code}")
        if len(data) * 2.41 > self.max_int_digits + 3:  # 8 bits are 2.41 decimal digits
            raise LimitExceeded(
                f"an integer has more than {self.max_int_digits} digits", kind="IntegerTooLong"
            )
        return int.from_bytes(data, "big", signed=True)

    def _msgpack(self) -> Any:
        if self._module is None:
            try:
                self._module = importlib.import_module("msgpack")
            except ImportError:
                raise ConfigurationError(
                    "the msgpack serializer needs msgpack: pip install 'taskrpc[msgpack]'"
                ) from None
        return self._module


class _Count:
    """msgpack's hook for every array and map built: counts them and their items."""

    __slots__ = ("limit", "left")

    def __init__(self, limit: int) -> None:
        self.limit = self.left = limit

    def __call__(self, container: Any) -> Any:
        self.left -= 1 + len(container)
        if self.left < 0:
            raise too_many_elements(self.limit)
        return container


def _wrap_big_ints(msgpack: Any, data: Any) -> Any:
    if isinstance(data, bool):
        return data
    if isinstance(data, int) and not -(2**63) <= data < 2**64:
        size = (data.bit_length() + 8) // 8
        return msgpack.ExtType(EXT_BIG_INT, data.to_bytes(size, "big", signed=True))
    if isinstance(data, dict):
        return {key: _wrap_big_ints(msgpack, value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_wrap_big_ints(msgpack, value) for value in data]
    return data
