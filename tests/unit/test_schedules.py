"""Schedules of periodic tasks: intervals, cron expressions, time zones, definitions."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from taskrpc import App, ConfigurationError
from taskrpc.beat import Cron, Every


def _at(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def _ticks(schedule, start: float, count: int, zone: str) -> list[str]:
    out, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        out.append(datetime.fromtimestamp(moment, ZoneInfo(zone)).strftime("%m-%d %H:%M %z"))
    return out


def test_intervals_tick_on_multiples_of_themselves_whatever_the_start():
    assert Every(60).next_after(120.0) == 180.0
    assert Every(60).next_after(119.5) == 120.0
    assert Every(0.5).next_after(10.2) == 10.5


def test_a_cron_skips_a_wall_clock_time_that_does_not_exist_and_runs_a_repeated_one_once():
    spring = Cron("30 2 * * *", "Europe/Paris")
    assert _ticks(spring, _at("2026-03-28T12:00"), 2, "Europe/Paris") == [
        "03-30 02:30 +0200",  # 29 March 2:30 does not exist in Paris
        "03-31 02:30 +0200",
    ]
    assert _ticks(spring, _at("2026-10-24T12:00"), 2, "Europe/Paris") == [
        "10-25 02:30 +0200",  # 2:30 happens twice that night: once is enough
        "10-26 02:30 +0100",
    ]


def test_cron_fields_steps_ranges_lists_and_weekdays():
    weekdays = Cron("0 9 * * 1-5", "America/New_York")
    friday = _at("2026-12-04T10:00", "America/New_York")
    assert _ticks(weekdays, friday, 2, "America/New_York") == [
        "12-07 09:00 -0500",
        "12-08 09:00 -0500",
    ]
    quarter = Cron("*/15 8,20 1 * 7")  # day 1 of the month or Sundays (cron's "or")
    assert _ticks(quarter, _at("2026-11-30T20:50"), 3, "UTC") == [
        "12-01 08:00 +0000",
        "12-01 08:15 +0000",
        "12-01 08:30 +0000",
    ]


@pytest.mark.parametrize(
    "expression", ["* * * *", "60 * * * *", "*/0 * * * *", "a * * * *", "0 0 30 2 *"]
)
def test_a_bad_cron_expression_is_refused(expression):
    with pytest.raises(ConfigurationError):
        Cron(expression).next_after(0.0)


def test_periodic_registers_an_entry_and_refuses_mistakes():
    app = App("beat", broker_url="memory://")

    @app.periodic(every=timedelta(minutes=5), args=(2,))
    @app.task(name="double")
    def double(x: int) -> int:
        return 2 * x

    entry = app.periodic_tasks["double"]
    assert (entry.task, entry.args, entry.schedule) == ("double", (2,), Every(300.0))
    with pytest.raises(ConfigurationError, match="every= or cron="):
        app.periodic(every=1, cron="* * * * *")
    with pytest.raises(ConfigurationError, match="unknown time zone"):
        app.periodic(cron="* * * * *", timezone="Mars/Olympus")
    with pytest.raises(ConfigurationError, match="already registered"):
        app.periodic(every=1)(double)
    with pytest.raises(ConfigurationError, match="above @app.task"):
        app.periodic(every=1, name="plain")(lambda: None)  # type: ignore[type-var]
    with pytest.raises(Exception, match="x"):
        app.periodic(every=1, name="bad", args=("x",))(double)
