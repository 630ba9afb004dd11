"""The payload codec: everything a message body passes through on its way out and in.

Out (:meth:`Codec.encode`): serialize with the chosen serializer, refuse a body over the
size limit, compress it if it is at least the compression threshold.
In (:meth:`Codec.decode`): refuse a body over the size limit, refuse a content type not
in this side's accept list (or an unknown content encoding), decompress without ever
producing more than the size limit, decode.
Signatures (:meth:`Codec.sign`, :meth:`Codec.verify`) cover a body as sent together with
its routing-relevant properties, so they are made when those are final (at publish time)
and checked before :meth:`Codec.decode` is called (in the worker's loop).

Clients and workers use the same codec, for requests and replies alike.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .budgets import JSON_PARSER_DEPTH, load_within
from .exceptions import ConfigurationError, ContentDisallowed, PayloadTooLarge
from .security.signing import Envelope, Signer
from .serializers import Registry
from .serializers.compression import check_method, compress, decompress

if TYPE_CHECKING:
    from .settings import Settings

logger = logging.getLogger("taskrpc.codec")

#: ``content_encoding`` of an uncompressed body.
IDENTITY = "binary"

#: Which side of a call decodes: a worker decodes requests, a client decodes replies.
Side = Literal["request", "reply"]
SIDES: tuple[Side, ...] = ("request", "reply")


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
        registry: The serializers.
        max_size: Largest body, in bytes, sent or accepted, before and after compression.
        compression: ``""`` (none), ``"zlib"`` or ``"gzip"``.
        compression_threshold: Bodies smaller than this many bytes are never compressed.
        signer: Signs outgoing and verifies incoming messages; ``None``: no signing.
        accept_requests: Serializer names (or content types) a worker decodes requests in.
        accept_replies: Serializer names (or content types) a client decodes replies in.
        max_int_digits: Most digits of long integers decoded per body; serializers with
            a ``max_int_digits`` attribute get this budget (see :mod:`taskrpc.budgets`).
        max_nesting_depth: Deepest nesting of arrays and objects decoded.
        max_elements: Most arrays, objects and items in a request decoded (replies are
            not counted: they come from this app's own workers).

    Example:
        >>> from taskrpc.serializers import default_registry
        >>> codec = Codec(default_registry(), max_size=1024)
        >>> encoded = codec.encode({"args": [1]}, "json")
        >>> codec.decode(encoded.body, encoded.content_type, encoded.content_encoding)
        {'args': [1]}
    """

    def __init__(
        self,
        registry: Registry,
        *,
        max_size: int,
        compression: str = "",
        compression_threshold: int = 16 * 1024,
        signer: Signer | None = None,
        accept_requests: Iterable[str] | str = ("json",),
        accept_replies: Iterable[str] | str = ("json",),
        max_int_digits: int = 50_000,
        max_nesting_depth: int = JSON_PARSER_DEPTH,
        max_elements: int = 20_000,
    ) -> None:
        self.registry = registry
        self.max_size = max_size
        self.max_int_digits = max_int_digits
        self.max_nesting_depth = max_nesting_depth
        self.max_elements = max_elements
        try:
            self.compression = check_method(compression)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.compression_threshold = compression_threshold
        self.signer = signer
        self._accept: dict[str, set[str]] = {
            "request": set(_names(accept_requests)),
            "reply": set(_names(accept_replies)),
        }
        self._changes = 0
        self._resolved: dict[str, tuple[tuple[int, int], frozenset[str]]] = {}

    @classmethod
    def from_settings(cls, registry: Registry, settings: Settings) -> Codec:
        """The codec ``settings`` describe; the app's own serializer is accepted on both sides.

        Raises:
            ConfigurationError: Unknown compression, or malformed signing keys.
        """
        codec = cls(
            registry,
            max_size=settings.max_message_size,
            compression=settings.compression,
            compression_threshold=settings.compression_threshold,
            signer=Signer.from_entries(settings.signing_keys, window=settings.signature_window),
            accept_requests=settings.accept_requests,
            accept_replies=settings.accept_replies,
            max_int_digits=settings.max_int_digits,
            max_nesting_depth=settings.max_nesting_depth,
            max_elements=settings.max_elements,
        )
        codec.accept(settings.serializer)
        return codec

    def __repr__(self) -> str:
        accept = {side: sorted(names) for side, names in self._accept.items()}
        return (
            f"<Codec max_size={self.max_size} compression={self.compression or 'none'!r} "
            f"accept={accept} signer={self.signer!r}>"
        )

    def accept(self, *names: str | None, side: Side | Literal["both"] = "both") -> None:
        """Add serializer names (or content types) to one side's accept list, or both.

        An app calls this for the serializers it chooses itself (its own, its tasks', and,
        on the reply side, those picked for single calls): what a process chose to send,
        it accepts back.
        """
        for each in SIDES if side == "both" else (side,):
            new = {name for name in names if name} - self._accept[each]
            if new:
                self._accept[each].update(new)
                self._changes += 1

    def accepted(self, side: Side = "request") -> frozenset[str]:
        """The content types accepted on ``side``. Unknown names are skipped (and logged)."""
        version = (self.registry.version, self._changes)
        cached = self._resolved.get(side)
        if cached is None or cached[0] != version:
            types = frozenset(self._content_type(name) for name in self._accept[side])
            cached = self._resolved[side] = (version, types - {""})
        return cached[1]

    def encode(self, data: Any, serializer: str, *, compress_body: bool = True) -> Encoded:
        """Serialize JSON-compatible ``data`` with the serializer named ``serializer``.

        Raises:
            PayloadTooLarge: The serialized body exceeds ``max_size``.
            ValueError: ``data`` cannot be serialized.
            ConfigurationError: No usable serializer has that name.
        """
        chosen = self.registry.by_name(serializer)
        body = chosen.dumps(data)
        self._check_size(len(body))
        encoding = IDENTITY
        if compress_body and self.compression and len(body) >= self.compression_threshold:
            body, encoding = compress(body, self.compression), self.compression
            self._check_size(len(body))
        return Encoded(body=body, content_type=chosen.content_type, content_encoding=encoding)

    def decode(
        self,
        body: bytes,
        content_type: str | None,
        content_encoding: str | None = None,
        headers: Mapping[str, Any] | None = None,
        *,
        side: Side = "request",
        max_elements: int | None = None,
    ) -> Any:
        """Check and decode a received body (its signature, if any, is already verified).

        ``max_elements`` tightens the element budget for this one request (a task whose
        arguments cannot hold more, see ``Signature.element_bound``).

        Raises:
            PayloadTooLarge: The body, or what it decompresses to, exceeds ``max_size``.
            ContentDisallowed: The content type is not accepted on ``side``, or the
                content encoding is unknown.
            ValueError: The body is malformed for its content type or encoding.
            LimitExceeded: A decode budget is exceeded (``kind`` names which).
        """
        body = _as_bytes(body)
        self._check_size(len(body))
        serializer = self.registry.for_content_type(content_type, self.accepted(side))
        limit = self._element_limit(max_elements) if side == "request" else None
        return self._loads(serializer, decompress(body, content_encoding, self.max_size), limit)

    def decode_as(
        self,
        body: bytes,
        serializer: str,
        content_type: str | None,
        content_encoding: str | None = None,
        *,
        max_elements: int | None = None,
    ) -> Any:
        """Decode a request with a serializer the receiver chose (a bare task's), whatever the
        accept lists say; the message may name no content type or that serializer's.

        Raises:
            PayloadTooLarge, ContentDisallowed, ValueError, LimitExceeded: As :meth:`decode`.
        """
        body = _as_bytes(body)
        self._check_size(len(body))
        chosen = self.registry.by_name(serializer)
        if content_type and content_type != chosen.content_type:
            raise ContentDisallowed(
                f"content type {content_type!r} is not accepted here "
                f"(this queue takes {chosen.content_type!r} or none)"
            )
        body = decompress(body, content_encoding, self.max_size)
        return self._loads(chosen, body, self._element_limit(max_elements))

    def serializer_for(self, content_type: str | None, default: str) -> str:
        """Name of the serializer of an accepted request ``content_type``, else ``default``."""
        try:
            return self.registry.for_content_type(content_type, self.accepted("request")).name
        except ContentDisallowed:
            return default

    @property
    def signs(self) -> bool:
        """Whether messages are signed and signatures required."""
        return self.signer is not None

    def sign(self, body: bytes, envelope: Envelope, *, key_id: str | None = None) -> dict[str, Any]:
        """Signing headers for a message about to be published; ``{}`` without a signer."""
        return {} if self.signer is None else self.signer.sign(body, envelope, key_id=key_id)

    def verify(self, body: bytes, envelope: Envelope, *, redelivered: bool = False) -> None:
        """Check a received message's signature; a no-op without a signer.

        Raises:
            BadSignature: Missing, wrong, unknown key, outside the window, or replayed.
        """
        if self.signer is not None:
            self.signer.verify(_as_bytes(body), envelope, redelivered=redelivered)

    def mark_answered(self, headers: Mapping[str, Any]) -> None:
        """Record that a verified request was answered (its redelivery is a replay now);
        a no-op without a signer."""
        if self.signer is not None:
            self.signer.mark_answered(headers)

    def answered(self, headers: Mapping[str, Any]) -> bool:
        """Whether a verified request was answered by this process already."""
        return self.signer is not None and self.signer.answered(headers)

    def _element_limit(self, max_elements: int | None) -> int:
        return min(max_elements or self.max_elements, self.max_elements)

    def _loads(self, serializer: Any, body: bytes, max_elements: int | None) -> Any:
        """Decode within the budgets (see :func:`~taskrpc.budgets.load_within`); elements
        are not counted when ``max_elements`` is ``None``."""
        if getattr(serializer, "max_int_digits", None) not in (None, self.max_int_digits):
            serializer.max_int_digits = self.max_int_digits
        return load_within(serializer, body, self.max_nesting_depth, max_elements)

    def _check_size(self, size: int) -> None:
        if size > self.max_size:
            raise PayloadTooLarge(f"body of {size} bytes exceeds the limit of {self.max_size}")

    def _content_type(self, name: str) -> str:
        if "/" in name:
            return name
        try:
            return self.registry.content_type_of(name)
        except ConfigurationError as exc:
            logger.warning("ignoring an accept-list entry: %s", exc)
            return ""


def _as_bytes(body: bytes | str) -> bytes:
    """The body as bytes: py-amqp hands over an empty body, or one whose content encoding
    is a text codec (``utf-8``), already decoded to ``str``."""
    if isinstance(body, str):
        return body.encode("utf-8", "surrogateescape")
    return body if isinstance(body, bytes) else bytes(body)


def _names(value: Iterable[str] | str) -> list[str]:
    """Serializer names from a list or a comma-separated string."""
    items = value.split(",") if isinstance(value, str) else value
    return [item.strip() for item in items if item and item.strip()]
