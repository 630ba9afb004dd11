"""Serializer registry: names <-> content types, with an accept list on the receiving side.

A serializer is any object with ``name``, ``content_type``, ``dumps`` and ``loads``
(see :class:`Serializer`). The registry is an instance owned by an app, never a
process-wide global.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..exceptions import ConfigurationError, TaskRPCError
from .json import JSONSerializer

__all__ = ["ContentDisallowed", "Registry", "Serializer", "JSONSerializer", "default_registry"]


@runtime_checkable
class Serializer(Protocol):
    """Turns Python data into bytes and back.

    ``dumps`` receives JSON-compatible Python data (dicts, lists, strings, numbers, bools,
    ``None``): pydantic models have already been reduced to that form.
    """

    name: str
    content_type: str

    def dumps(self, data: Any) -> bytes:
        """Encode ``data``."""
        ...

    def loads(self, body: bytes) -> Any:
        """Decode ``body``; raise ``ValueError`` when it is malformed."""
        ...


class ContentDisallowed(TaskRPCError):
    """A message's content type is not in the receiver's accept list."""


class Registry:
    """Serializers by name and by content type, plus the accepted content types.

    Example:
        >>> registry = default_registry()
        >>> registry.by_name("json").content_type
        'application/json'
    """

    def __init__(self, accept: tuple[str, ...] = ("application/json",)) -> None:
        self._by_name: dict[str, Serializer] = {}
        self._by_type: dict[str, Serializer] = {}
        self.accept = frozenset(accept)

    def register(self, serializer: Serializer) -> None:
        """Add ``serializer``; it is not accepted on receipt until listed in ``accept``."""
        self._by_name[serializer.name] = serializer
        self._by_type[serializer.content_type] = serializer

    def by_name(self, name: str) -> Serializer:
        """Return the serializer registered as ``name``.

        Raises:
            ConfigurationError: No serializer has that name.
        """
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name))
            raise ConfigurationError(f"unknown serializer {name!r} (known: {known})") from None

    def for_content_type(self, content_type: str | None) -> Serializer:
        """Return the serializer for a received ``content_type`` if it is accepted.

        Raises:
            ContentDisallowed: The type is not accepted or has no serializer.
        """
        serializer = self._by_type.get(content_type or "")
        if serializer is None or content_type not in self.accept:
            raise ContentDisallowed(f"content type {content_type!r} is not accepted")
        return serializer


def default_registry() -> Registry:
    """A registry holding the built-in serializers, accepting only JSON."""
    registry = Registry()
    registry.register(JSONSerializer())
    return registry
