"""The payload codec: everything a message body passes through on its way out and in.

Out: serialize with the chosen serializer, check the size limit.
In: check the size limit, check the content type against the accept list, decode.
Both clients and the worker use the same codec, for requests and replies alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .exceptions import PayloadTooLarge
from .serializers import Registry

#: ``content_encoding`` of an uncompressed body.
IDENTITY = "binary"


@dataclasses.dataclass(frozen=True, slots=True)
class Encoded:
    """A body ready to publish, with the properties and headers that describe it."""

    body: bytes
    content_type: str
    content_encoding: str = IDENTITY
    headers: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class Codec:
    """Encodes and decodes bodies for one app.

    Parameters:
        registry: The serializers, and the content types accepted on receipt.
        max_size: Largest body, in bytes, sent or accepted.
    """

    def __init__(self, registry: Registry, *, max_size: int) -> None:
        self.registry = registry
        self.max_size = max_size

    def encode(self, data: Any, serializer: str) -> Encoded:
        """Serialize JSON-compatible ``data`` with the serializer named ``serializer``.

        Raises:
            PayloadTooLarge: The encoded body exceeds ``max_size``.
            ValueError: ``data`` cannot be serialized.
        """
        chosen = self.registry.by_name(serializer)
        body = chosen.dumps(data)
        self._check_size(len(body))
        return Encoded(body=body, content_type=chosen.content_type)

    def decode(
        self,
        body: bytes,
        content_type: str | None,
        content_encoding: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> Any:
        """Check and decode a received body.

        Raises:
            PayloadTooLarge: The body exceeds ``max_size``.
            ContentDisallowed: The content type is not accepted.
            ValueError: The body is malformed for its content type.
        """
        self._check_size(len(body))
        return self.registry.for_content_type(content_type).loads(body)

    def serializer_for(self, content_type: str | None, default: str) -> str:
        """Name of the accepted serializer for ``content_type``, else ``default``."""
        try:
            return self.registry.for_content_type(content_type).name
        except Exception:
            return default

    def _check_size(self, size: int) -> None:
        if size > self.max_size:
            raise PayloadTooLarge(f"body of {size} bytes exceeds the limit of {self.max_size}")
