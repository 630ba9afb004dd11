"""Rebuilding remote exception types on the caller, only from an allow-list.

A worker reports a failed task as data: the qualified name of the exception type, its
message and its traceback text. The caller raises :class:`~taskrpc.RemoteError`, unless
the app allowed that exact type, in which case the error is also an instance of it
(``except ValueError`` works). Names are only ever compared with classes the caller
passed in; nothing named in a message is imported.
"""

from __future__ import annotations

import threading

from ..exceptions import ConfigurationError, RemoteError


def qualified_name(cls: type) -> str:
    """The name a worker reports ``cls`` by: ``ValueError``, or ``package.module.Name``."""
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class RemoteExceptionTypes:
    """The exception types a caller rebuilds, by the qualified name workers report.

    Example:
        >>> types = RemoteExceptionTypes()
        >>> types.allow(KeyError)
        >>> error = types.rebuild(RemoteError("'k'", type_name="KeyError"))
        >>> isinstance(error, KeyError), isinstance(error, RemoteError)
        (True, True)
    """

    def __init__(self) -> None:
        self._allowed: dict[str, type[Exception]] = {}
        self._combined: dict[type[Exception], type[RemoteError] | None] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RemoteExceptionTypes {sorted(self._allowed)}>"

    def __contains__(self, name: object) -> bool:
        return name in self._allowed

    def allow(self, *classes: type[Exception]) -> None:
        """Rebuild remote errors of exactly these types (not their subclasses) as them.

        Raises:
            ConfigurationError: An argument is not an ``Exception`` subclass.
        """
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, Exception)):
                raise ConfigurationError(f"{cls!r} is not an exception class")
        with self._lock:
            self._allowed.update({qualified_name(cls): cls for cls in classes})

    def rebuild(self, error: RemoteError) -> RemoteError:
        """``error`` as an instance of its allowed type too, else ``error`` unchanged.

        Only plain task failures are rebuilt; taskrpc's own subclasses (``InvalidArguments``
        and the like) are returned as they are.
        """
        cls = self._allowed.get(error.type_name) if type(error) is RemoteError else None
        combined = self._combine(cls) if cls is not None else None
        if combined is None:
            return error
        try:
            rebuilt = combined.__new__(combined, error.message)
            BaseException.__init__(rebuilt, error.message)
        except Exception:  # an exotic constructor: keep the plain RemoteError
            return error
        rebuilt.message, rebuilt.type_name = error.message, error.type_name
        rebuilt.remote_traceback, rebuilt.details = error.remote_traceback, error.details
        return rebuilt

    def _combine(self, cls: type[Exception]) -> type[RemoteError] | None:
        with self._lock:
            if cls not in self._combined:
                try:
                    self._combined[cls] = type(
                        f"Remote{cls.__name__}",
                        (RemoteError, cls),
                        {"__module__": __name__, "__doc__": f"A remote {cls.__name__}."},
                    )
                except TypeError:  # incompatible layouts: no combined class possible
                    self._combined[cls] = None
            return self._combined[cls]
