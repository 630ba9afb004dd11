"""Plain text: a body is one UTF-8 string, for plain AMQP clients (``text/plain``).

This is what the RabbitMQ RPC tutorial speaks: the request body is ``str(n)`` and the
reply body ``str(fib(n))``. Only strings and scalars can be encoded.
"""

from __future__ import annotations

from typing import Any

import pydantic_core


class TextSerializer:
    """A body is a UTF-8 string; scalars are written as JSON writes them.

    Strings are sent as they are; ``None``, booleans and numbers as JSON text (``null``,
    ``true``, ``832040``: integers of any size, exactly). Lists and dicts are refused.
    Decoding always yields a ``str``; the task's type hints turn ``"30"`` into ``30``.

    Example:
        >>> TextSerializer().dumps(832040)
        b'832040'
        >>> TextSerializer().loads(b"30")
        '30'
    """

    name = "text"
    content_type = "text/plain"

    def dumps(self, data: Any) -> bytes:
        """Encode a string or a scalar; raise ``ValueError`` for anything else."""
        if isinstance(data, str):
            return data.encode("utf-8")
        if data is None or isinstance(data, (bool, int, float)):
            return pydantic_core.to_json(data, inf_nan_mode="constants")
        raise ValueError(
            f"the text serializer encodes strings and numbers, not {type(data).__name__}"
        )

    def loads(self, body: bytes) -> Any:
        """Decode UTF-8; raise ``ValueError`` (``UnicodeDecodeError``) if it is not."""
        return body.decode("utf-8")
