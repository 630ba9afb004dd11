"""Structured logs: one line per answered request, as text or as JSON objects.

:class:`RequestLog` is middleware that logs every request a worker answers on the
``taskrpc.request`` logger, with the fields of :data:`REQUEST_FIELDS` as ``extra`` (so
any formatter or log shipper can read them). :class:`JsonFormatter` writes each record
as one JSON object a line, those fields included: ``taskrpc worker --log-format json``.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from .middleware import SOURCE_CACHE, SOURCE_REFUSED, Middleware

if TYPE_CHECKING:
    from .messages import Outcome
    from .worker.executor import Job

__all__ = ["REQUEST_FIELDS", "JsonFormatter", "RequestLog"]

#: The ``extra`` fields of a request's log record.
REQUEST_FIELDS = (
    "request_id",
    "task",
    "queue",
    "duration",
    "outcome",
    "error_code",
    "error_type",
    "retries",
    "redelivered",
)

#: Record attributes every :class:`logging.LogRecord` has (not copied as extra fields).
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

request_logger = logging.getLogger("taskrpc.request")


class RequestLog(Middleware):
    """Logs each answered request: INFO when it succeeded, WARNING otherwise.

    ``outcome`` is ``succeeded``, ``failed`` (the task ran and failed), ``refused``
    (never ran: bad request, invalid arguments, deadline passed, revoked ...) or
    ``cached`` (answered again from the recent-replies cache).
    """

    def __init__(self, logger: logging.Logger = request_logger) -> None:
        self.logger = logger
        self._started: dict[int, float] = {}

    def before_request(self, job: Job) -> None:
        if self.logger.isEnabledFor(logging.WARNING):  # else nothing will be logged
            self._started[id(job)] = time.perf_counter()

    def after_request(self, job: Job, outcome: Outcome, source: str) -> None:
        began = self._started.pop(id(job), None)
        level = logging.INFO if outcome.ok else logging.WARNING
        if not self.logger.isEnabledFor(level):
            return
        duration = round(time.perf_counter() - began, 6) if began is not None else None
        kind = _outcome_name(outcome, source)
        fields = {
            "request_id": job.request_id,
            "task": job.task,
            "queue": job.routing_key,
            "duration": duration,
            "outcome": kind,
            "error_code": outcome.error_code,
            "error_type": outcome.error_type,
            "retries": outcome.retries,
            "redelivered": job.redelivered,
        }
        took = f" in {duration:.6f}s" if duration is not None else ""
        error = f": {outcome.error_code} ({outcome.error_type})" if outcome.error_code else ""
        self.logger.log(
            level,
            "%s [%s] %s%s%s",
            job.task or "-",
            job.request_id,
            kind,
            took,
            error,
            extra=fields,
        )


def _outcome_name(outcome: Outcome, source: str) -> str:
    from .metrics import REFUSAL_CODES  # plain module: no prometheus import

    if source == SOURCE_CACHE:
        return "cached"
    if outcome.ok:
        return "succeeded"
    if source == SOURCE_REFUSED or outcome.error_code in REFUSAL_CODES:
        return "refused"
    return "failed"


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object: ``time`` (ISO 8601, UTC), ``level``,
    ``logger``, ``process``, ``message``, any ``extra`` fields, and ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)
