"""Periodic entries: a task, its schedule and the arguments each run gets."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from ..exceptions import ConfigurationError
from .schedule import Cron, Every, Schedule

if TYPE_CHECKING:
    from ..task import Task

TaskT = TypeVar("TaskT", bound="Task[Any, Any]")


@dataclasses.dataclass(frozen=True)
class PeriodicEntry:
    """One periodic task as ``taskrpc beat`` runs it.

    Attributes:
        name: The entry's name (its task's name unless given), the key of its state.
        task: The task's registered name.
        queue: Where its requests go (``None``: the app's default queue when sent).
        schedule: When it runs.
        args: Positional arguments of every run.
        kwargs: Keyword arguments of every run.
    """

    name: str
    task: str
    queue: str | None
    schedule: Schedule
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)


def schedule_of(every: float | timedelta | None, cron: str | None, timezone: str) -> Schedule:
    """The schedule of ``@app.periodic``'s options.

    Raises:
        ConfigurationError: Neither or both of ``every`` and ``cron``.
    """
    if (every is None) == (cron is None):
        raise ConfigurationError("give a periodic task either every= or cron=, not both")
    if cron is not None:
        return Cron(cron, timezone)
    assert every is not None
    seconds = every.total_seconds() if isinstance(every, timedelta) else float(every)
    return Every(seconds)


def periodic_decorator(
    entries: dict[str, PeriodicEntry],
    schedule: Schedule,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None,
    name: str | None,
) -> Callable[[TaskT], TaskT]:
    """The decorator ``@app.periodic(...)`` returns: it registers an entry for a task."""

    def register(task: TaskT) -> TaskT:
        from ..task import Task

        if not isinstance(task, Task):
            raise ConfigurationError("@app.periodic applies to a task: put it above @app.task")
        key = name or task.name
        if key in entries:
            raise ConfigurationError(f"a periodic entry named {key!r} is already registered")
        task.check_call(args, kwargs)
        entries[key] = PeriodicEntry(
            name=key,
            task=task.name,
            queue=task._queue,
            schedule=schedule,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
        )
        return task

    return register
