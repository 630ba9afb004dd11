"""Serializer registry: names <-> content types, unsafe formats opt-in, plug-ins on demand.

A serializer is any object with ``name``, ``content_type``, ``dumps`` and ``loads``
(see :class:`Serializer`). The registry is an instance owned by an app, never a
process-wide global. Built in: ``json`` (the default), ``msgpack`` (with the
``taskrpc[msgpack]`` extra), ``text`` (plain UTF-8, for plain AMQP clients) and
``pickle``, which is refused until the app calls :meth:`Registry.enable`.

Third-party serializers register under the entry-point group ``taskrpc.serializers``
(name = serializer name, value = a class or instance). They are loaded on the first
lookup of a name the registry does not know, never when taskrpc is imported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import threading
from collections.abc import Collection
from typing import Any, Protocol, runtime_checkable

from ..exceptions import ConfigurationError, ContentDisallowed
from .json import JSONSerializer
from .msgpack import MsgpackSerializer
from .pickle import PickleSerializer
from .text import TextSerializer

__all__ = [
    "ENTRY_POINT_GROUP",
    "ContentDisallowed",
    "JSONSerializer",
    "MsgpackSerializer",
    "PickleSerializer",
    "Registry",
    "Serializer",
    "TextSerializer",
    "default_registry",
]

logger = logging.getLogger("taskrpc.serializers")

#: Entry-point group third-party serializers register under.
ENTRY_POINT_GROUP = "taskrpc.serializers"

#: Built-in serializers that need an extra, and the extra to install.
_EXTRAS = {"msgpack": "taskrpc[msgpack]"}


@runtime_checkable
class Serializer(Protocol):
    """Turns Python data into bytes and back.

    ``dumps`` receives JSON-compatible Python data (dicts, lists, strings, numbers, bools,
    ``None``): pydantic models have already been reduced to that form. A serializer with
    a true ``unsafe`` attribute is refused until enabled (see :meth:`Registry.enable`).
    """

    name: str
    content_type: str

    def dumps(self, data: Any) -> bytes:
        """Encode ``data``; raise ``ValueError`` if it cannot be encoded."""
        ...

    def loads(self, body: bytes) -> Any:
        """Decode ``body``; raise ``ValueError`` when it is malformed."""
        ...


class Registry:
    """Serializers by name and by content type, plus the content types accepted by default.

    Parameters:
        accept: Content types :meth:`for_content_type` accepts when not told otherwise
            (an app's codec keeps one accept list per side: ``Settings.accept_requests``
            and ``Settings.accept_replies``).

    Example:
        >>> registry = default_registry()
        >>> registry.by_name("json").content_type
        'application/json'
        >>> registry.by_name("pickle")
        Traceback (most recent call last):
        ...
        taskrpc.exceptions.ConfigurationError: serializer 'pickle' is unsafe ...
    """

    def __init__(self, accept: Collection[str] = ("application/json",)) -> None:
        self._by_name: dict[str, Serializer] = {}
        self._by_type: dict[str, Serializer] = {}
        self._enabled: set[str] = set()
        self._plugins_scanned = False
        self._lock = threading.RLock()
        self.accept = frozenset(accept)
        #: Bumped on every change; lets caches of resolved names notice.
        self.version = 0

    def __repr__(self) -> str:
        return f"<Registry {sorted(self._by_name)} enabled_unsafe={sorted(self._enabled)}>"

    def register(self, serializer: Any) -> None:
        """Add ``serializer`` (replacing one of the same name).

        Raises:
            ConfigurationError: It lacks ``name``, ``content_type``, ``dumps`` or ``loads``.
        """
        if not isinstance(serializer, Serializer) or not serializer.name:
            raise ConfigurationError(f"{serializer!r} is not a serializer (see Serializer)")
        with self._lock:
            self._by_name[serializer.name] = serializer
            self._by_type[serializer.content_type] = serializer
            self.version += 1

    def enable(self, name: str) -> None:
        """Allow an unsafe serializer (``pickle``) to be used and, if listed, accepted.

        Only do this when every process that can publish to your queues is trusted:
        decoding pickle runs code the sender chose. Logged as a warning.

        Raises:
            ConfigurationError: No serializer has that name.
        """
        serializer = self._lookup(name)
        if getattr(serializer, "unsafe", False):
            logger.warning(
                "UNSAFE serializer %r enabled: anyone who can publish to this app's queues "
                "can run code in its processes",
                name,
            )
        with self._lock:
            self._enabled.add(name)
            self.version += 1

    def usable(self, serializer: Serializer) -> bool:
        """Whether ``serializer`` is safe or was enabled."""
        return not getattr(serializer, "unsafe", False) or serializer.name in self._enabled

    def by_name(self, name: str) -> Serializer:
        """Return the usable serializer registered (or installed as a plug-in) as ``name``.

        Raises:
            ConfigurationError: No serializer has that name, its plug-in fails to load,
                or it is unsafe and not enabled.
        """
        serializer = self._lookup(name)
        if not self.usable(serializer):
            raise ConfigurationError(
                f"serializer {name!r} is unsafe and disabled; "
                f"enable it with app.serializers.enable({name!r}) if you trust every sender"
            )
        return serializer

    def content_type_of(self, name: str) -> str:
        """The content type of the serializer called ``name`` (usable or not).

        Raises:
            ConfigurationError: No serializer has that name.
        """
        return self._lookup(name).content_type

    def for_content_type(
        self, content_type: str | None, accept: Collection[str] | None = None
    ) -> Serializer:
        """Return the serializer for a received ``content_type`` if it is accepted.

        Parameters:
            content_type: The message's content type.
            accept: Accepted content types; defaults to the registry's ``accept``.

        Raises:
            ContentDisallowed: The type is not accepted, has no serializer, or is unsafe
                and not enabled.
        """
        accepted = self.accept if accept is None else accept
        if content_type not in accepted:
            raise ContentDisallowed(f"content type {content_type!r} is not accepted")
        serializer = self._by_type.get(content_type or "")
        if serializer is None and not self._plugins_scanned:
            self._load_plugins()
            serializer = self._by_type.get(content_type or "")
        if serializer is None or not self.usable(serializer):
            raise ContentDisallowed(f"content type {content_type!r} is not accepted")
        return serializer

    def names(self) -> list[str]:
        """Names of the registered serializers (plug-ins only once loaded), sorted."""
        return sorted(self._by_name)

    def _lookup(self, name: str) -> Serializer:
        serializer = self._by_name.get(name)
        if serializer is None:
            serializer = self._load_plugin(name)
        if serializer is None:
            if name in _EXTRAS:
                raise ConfigurationError(
                    f"serializer {name!r} needs: pip install {_EXTRAS[name]!r}"
                )
            known = ", ".join(self.names())
            raise ConfigurationError(f"unknown serializer {name!r} (known: {known})")
        return serializer

    def _load_plugin(self, name: str) -> Serializer | None:
        with self._lock:
            if name in self._by_name:
                return self._by_name[name]
            for entry_point in _entry_points():
                if entry_point.name == name:
                    return self._register_plugin(entry_point)
        return None

    def _load_plugins(self) -> None:
        with self._lock:
            for entry_point in _entry_points():
                if entry_point.name not in self._by_name:
                    try:
                        self._register_plugin(entry_point)
                    except ConfigurationError as exc:
                        logger.warning("%s", exc)
            self._plugins_scanned = True

    def _register_plugin(self, entry_point: importlib.metadata.EntryPoint) -> Serializer:
        try:
            loaded = entry_point.load()
            serializer = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:
            raise ConfigurationError(
                f"cannot load serializer plug-in {entry_point.name!r} "
                f"({entry_point.value}): {type(exc).__name__}: {exc}"
            ) from exc
        if getattr(serializer, "name", None) != entry_point.name:
            raise ConfigurationError(
                f"serializer plug-in {entry_point.value} is named "
                f"{getattr(serializer, 'name', None)!r}, not {entry_point.name!r}"
            )
        self.register(serializer)
        logger.debug("loaded serializer plug-in %r from %s", entry_point.name, entry_point.value)
        plugin: Serializer = serializer
        return plugin


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def default_registry() -> Registry:
    """A registry of the built-in serializers, accepting only JSON by default.

    ``msgpack`` is registered only when the ``msgpack`` package is installed.
    """
    registry = Registry()
    registry.register(JSONSerializer())
    registry.register(TextSerializer())
    registry.register(PickleSerializer())
    if importlib.util.find_spec("msgpack") is not None:
        registry.register(MsgpackSerializer())
    return registry
