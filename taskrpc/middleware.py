"""Middleware: no-op hooks around a request's life, on the worker and on the client.

Subclass :class:`Middleware`, override the hooks you need, and add it with
:meth:`taskrpc.App.add_middleware` (or pass it to :class:`~taskrpc.worker.Worker` for one
worker only). ``before_*`` hooks run in the order middleware were added, ``after_*``
hooks in reverse. A hook that raises is logged and skipped: it never breaks a request.

Where each hook runs:

* ``before_task`` / ``after_task``: around each try of a task, in the process and thread
  that runs it (a pool child with the processes pool).
* ``before_request`` / ``refuse`` / ``after_request`` / ``after_reply``: in the worker's
  loop, in the worker's main process, for every request it takes, whatever the pool.
* ``after_worker_boot`` / ``before_worker_shutdown`` / ``after_connect`` /
  ``after_connection_lost``: the worker's life and its broker connection.
* ``before_send`` / ``after_call`` / ``after_timeout`` / ``after_dropped_reply``: on the
  client, in whichever thread sends, settles or waits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .context import RequestContext

if TYPE_CHECKING:
    from .client.base import OutgoingRequest
    from .client.replies import RawReply
    from .exceptions import RemoteError
    from .messages import Outcome
    from .worker import Worker
    from .worker.executor import Job

logger = logging.getLogger("taskrpc.middleware")

#: How a request was answered, as ``after_request`` is told: the task ran (or was
#: attempted: invalid arguments and unknown tasks are found by the executor) ...
SOURCE_RUN = "run"
#: ... the loop refused it before any pool saw it (size, headers, signature, revoked) ...
SOURCE_REFUSED = "refused"
#: ... or it was answered again from the recent-replies cache (a redelivery or resend).
SOURCE_CACHE = "cache"


class Middleware:
    """Base class with every hook as a no-op."""

    def before_task(self, context: RequestContext) -> None:
        """Called before each try of a task, in the process that runs it."""

    def after_task(self, context: RequestContext, error: BaseException | None) -> None:
        """Called after each try of a task with the exception it raised, if any."""

    def before_request(self, job: Job) -> None:
        """Called in the worker's loop when it takes a request, before any check."""

    def refuse(self, job: Job) -> RemoteError | None:
        """Return an error to refuse ``job`` before it runs (e.g. it was revoked)."""
        return None

    def after_request(self, job: Job, outcome: Outcome, source: str) -> None:
        """Called in the worker's loop once ``job`` is answered (before the reply is sent).

        ``source`` is ``"run"``, ``"refused"`` or ``"cache"`` (``SOURCE_*`` in this module).
        """

    def after_reply(self, request_id: str, task: str) -> None:
        """Called in the worker's loop once the reply is published, before the request is
        acknowledged (the window in which a crash makes the broker redeliver it)."""

    def after_worker_boot(self, worker: Worker) -> None:
        """Called once the worker's pool exists, before it first connects."""

    def before_worker_shutdown(self, worker: Worker) -> None:
        """Called when the worker has stopped serving, before its pool shuts down."""

    def after_connect(self, worker: Worker) -> None:
        """Called each time the worker (re)connects and consumes its queues."""

    def after_connection_lost(self, worker: Worker, error: BaseException) -> None:
        """Called when the worker lost its broker connection (it will reconnect)."""

    def before_send(self, request: OutgoingRequest) -> None:
        """Called on the client before a request is queued for publishing; may add headers
        to ``request.base_headers`` (they are signed with the rest)."""

    def after_call(
        self,
        request: OutgoingRequest,
        reply: RawReply | None,
        error: BaseException | None,
        elapsed: float,
        resends: int,
    ) -> None:
        """Called on the client when a call settles: with its raw reply, or the local error
        that ended it (connection lost, client closed, unroutable), ``elapsed`` seconds
        after it was sent, and how many times it was resent."""

    def after_timeout(self, task: str, request_id: str) -> None:
        """Called on the client when a caller gives up on a call at its deadline."""

    def after_dropped_reply(self, kind: str) -> None:
        """Called on the client for a reply it drops: ``kind`` is "unknown", "duplicate", or
        "rejected" (it failed verification or decoding; its call keeps waiting),
        or "undecodable" (the transport could not read the delivery at all)."""


def overriding(middleware: Iterable[Middleware], hook: str) -> list[Middleware]:
    """The middleware, in the order given, whose ``hook`` is not the base class's no-op."""
    base = getattr(Middleware, hook)
    return [item for item in middleware if getattr(type(item), hook, base) is not base]


def run_hooks(middleware: Iterable[Middleware], hook: str, *args: object) -> None:
    """Call ``hook`` on each middleware; log and carry on if one raises."""
    for item in middleware:
        try:
            getattr(item, hook)(*args)
        except Exception:
            logger.exception("middleware %r failed in %s", item, hook)


def first_refusal(middleware: Iterable[Middleware], job: Job) -> RemoteError | None:
    """The first error a middleware's ``refuse`` hook returns for ``job``, if any."""
    for item in middleware:
        try:
            error = item.refuse(job)
        except Exception:
            logger.exception("middleware %r failed in refuse", item)
            continue
        if error is not None:
            return error
    return None
