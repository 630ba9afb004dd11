"""Periodic tasks: schedules, entries and the ``taskrpc beat`` service."""

from .entries import PeriodicEntry
from .schedule import Cron, Every, Schedule

__all__ = ["Cron", "Every", "PeriodicEntry", "Schedule"]
