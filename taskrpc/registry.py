"""An app's task registry: registering functions as tasks, and finding tasks by name.

:meth:`taskrpc.App.task` registers through :func:`register_task`; what it returns when
given options, a decorator, is typed by :class:`TaskDecorator`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, overload

from .exceptions import ConfigurationError
from .task import CoroutineTask, FunctionTask, Task

if TYPE_CHECKING:
    from .app import App
    from .codec import Codec

P = ParamSpec("P")
R = TypeVar("R")


class TaskDecorator(Protocol):
    """What ``@app.task(...)`` with options returns: it turns a function into a task."""

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[P, Coroutine[Any, Any, R]], /
    ) -> CoroutineTask[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> FunctionTask[P, R]: ...


def register_task(
    app: App, func: Callable[..., Any], *, name: str | None = None, **options: Any
) -> Task[Any, Any]:
    """Make ``func`` a task of ``app`` with ``options`` (those of :meth:`App.task
    <taskrpc.App.task>`, which types them) and register it.

    Raises:
        ConfigurationError: Another task already has that name, or another bare task
            serves the same queue.
    """
    task_name = name or f"{func.__module__}.{func.__qualname__}"
    if task_name in app.tasks:
        raise ConfigurationError(f"a task named {task_name!r} is already registered")
    kind = CoroutineTask if inspect.iscoroutinefunction(func) else FunctionTask
    task: Task[Any, Any] = kind(app, func, name=task_name, **options)
    if task.bare and app.bare_task(task.queue) is not None:
        raise ConfigurationError(f"another bare task already serves {task.queue!r}")
    app.tasks[task_name] = task
    accept_serializers_of(app.codec, task)
    return task


def accept_serializers_of(codec: Codec, task: Task[Any, Any]) -> None:
    """What the app chose to send, it accepts back (a bare task's format is only ever
    used on its own queue, so it stays out of the accept lists)."""
    codec.accept(None if task.bare else task.serializer, task.reply_serializer)


def find_task(tasks: Mapping[str, Task[Any, Any]], name: str) -> Task[Any, Any] | None:
    """The task registered as ``name``, or, failing that, the one whose function is
    called ``name`` if exactly one is."""
    if name in tasks:
        return tasks[name]
    matches = [t for t in tasks.values() if t.fn.__name__ == name]
    return matches[0] if len(matches) == 1 else None
