"""Schedules of periodic tasks: fixed intervals and cron expressions, time-zone aware.

A schedule answers one question, :meth:`next_after`: the first tick strictly after a
moment. Ticks are points in time fixed by the schedule alone (an interval's ticks are
multiples of it since the epoch, a cron's are the minutes it matches), never by when a
beat process started, so every beat process computes the same ticks: that is what lets
a new leader carry on exactly where the old one stopped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..exceptions import ConfigurationError

#: Longest a cron expression is searched ahead for its next match (a year and a day).
CRON_HORIZON = timedelta(days=367)


class Schedule(Protocol):
    """When a periodic task runs."""

    def next_after(self, moment: float) -> float:
        """The first tick strictly after ``moment`` (seconds since the epoch)."""
        ...


@dataclasses.dataclass(frozen=True)
class Every:
    """Every ``seconds`` seconds, at the multiples of ``seconds`` since the epoch (so
    ``Every(3600)`` ticks on the hour, UTC)."""

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ConfigurationError(f"an interval must be positive, got {self.seconds!r}")

    def next_after(self, moment: float) -> float:
        return (math.floor(moment / self.seconds) + 1) * self.seconds


@dataclasses.dataclass(frozen=True)
class Cron:
    """A five-field cron expression (minute hour day-of-month month day-of-week) read in
    the wall-clock time of ``timezone`` (an IANA name; default UTC).

    Fields take ``*``, numbers, ranges ``a-b``, steps ``*/n`` or ``a-b/n``, and lists
    ``a,b``; day-of-week counts from 0 (Sunday) to 6, 7 also being Sunday. As in cron, if
    both day fields are restricted a day matching either runs. A wall-clock time that a
    daylight-saving change skips does not run that day; one it repeats runs once.

    Example:
        >>> from taskrpc.beat import Cron
        >>> Cron("30 7 * * 1-5", "Europe/Paris")  # weekdays at 7:30, Paris time
        Cron(expression='30 7 * * 1-5', timezone='Europe/Paris')
    """

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        self._fields()  # fail at definition
        _zone(self.timezone)

    def _fields(self) -> tuple[frozenset[int], ...]:
        parts = self.expression.split()
        if len(parts) != 5:
            raise ConfigurationError(f"cron {self.expression!r}: expected 5 fields")
        bounds = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
        fields = [
            _field(part, low, high, self.expression)
            for part, (low, high) in zip(parts, bounds, strict=True)
        ]
        fields[4] = frozenset(d % 7 for d in fields[4])
        return tuple(fields)

    def next_after(self, moment: float) -> float:
        minutes, hours, days, months, weekdays = self._fields()
        parts = self.expression.split()
        any_day, any_weekday = parts[2] == "*", parts[4] == "*"
        zone = _zone(self.timezone)
        at = float(math.floor(moment / 60) * 60 + 60)
        end = at + CRON_HORIZON.total_seconds()
        while at < end:
            local = datetime.fromtimestamp(at, timezone.utc).astimezone(zone)
            day_ok = _day_matches(local, days, weekdays, any_day, any_weekday)
            if not (local.month in months and day_ok):
                at = _next_local_midnight(local, zone)
                continue
            if local.hour not in hours:
                at += 3600 - local.minute * 60
                continue
            if local.minute in minutes and not local.fold:
                return at
            at += 60
        raise ConfigurationError(f"cron {self.expression!r} never matches within a year")


def _day_matches(
    local: datetime,
    days: frozenset[int],
    weekdays: frozenset[int],
    any_day: bool,
    any_weekday: bool,
) -> bool:
    in_month = local.day in days
    in_week = (local.isoweekday() % 7) in weekdays
    if any_day or any_weekday:
        return in_month and in_week
    return in_month or in_week


def _next_local_midnight(local: datetime, zone: ZoneInfo) -> float:
    tomorrow = (local.replace(tzinfo=None) + timedelta(days=1)).replace(hour=0, minute=0)
    return tomorrow.replace(tzinfo=zone).timestamp()


def _field(text: str, low: int, high: int, expression: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        values.update(_item(item, low, high, expression))
    return frozenset(values)


def _item(item: str, low: int, high: int, expression: str) -> Iterable[int]:
    spec, _, step_text = item.partition("/")
    try:
        step = int(step_text) if step_text else 1
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            first, last = (int(v) for v in spec.split("-", 1))
        else:
            first = last = int(spec)
    except ValueError:
        raise ConfigurationError(f"cron {expression!r}: cannot read {item!r}") from None
    if step < 1 or not low <= first <= last <= high:
        raise ConfigurationError(f"cron {expression!r}: {item!r} is out of {low}-{high}")
    return range(first, last + 1, step)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown time zone {name!r}") from None
