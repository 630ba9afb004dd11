"""Middleware: no-op hooks around a request's life on the worker.

Subclass :class:`Middleware`, override the hooks you need, and add it with
:meth:`taskrpc.App.add_middleware`. ``before_*`` hooks run in the order middleware were
added, ``after_*`` hooks in reverse. A hook that raises is logged and skipped: it never
breaks a request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .context import RequestContext

logger = logging.getLogger("taskrpc.middleware")


class Middleware:
    """Base class with every hook as a no-op."""

    def before_task(self, context: RequestContext) -> None:
        """Called before each try of a task, in the process that runs it."""

    def after_task(self, context: RequestContext, error: BaseException | None) -> None:
        """Called after each try of a task with the exception it raised, if any."""

    def after_reply(self, request_id: str, task: str) -> None:
        """Called in the worker's loop once the reply is published, before the request is
        acknowledged (the window in which a crash makes the broker redeliver it)."""


def run_hooks(middleware: Iterable[Middleware], hook: str, *args: object) -> None:
    """Call ``hook`` on each middleware; log and carry on if one raises."""
    for item in middleware:
        try:
            getattr(item, hook)(*args)
        except Exception:
            logger.exception("middleware %r failed in %s", item, hook)
