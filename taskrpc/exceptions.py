"""Exceptions raised by taskrpc.

Every exception taskrpc raises derives from :class:`TaskRPCError`::

    TaskRPCError
    ├── ConfigurationError        bad settings, bad APP path, bad task definition
    ├── NotRegistered             a task name this app does not know (local lookup)
    ├── BrokerError               talking to the broker failed
    │   ├── ConnectionLost        the connection (or the reply queue) went away mid-call
    │   ├── Unroutable            no queue is bound for the request (mandatory publish)
    │   ├── NoQuorum              the broker did not confirm the request in time (quorum lost?)
    │   └── AuthenticationFailed  the broker refused the credentials (retrying cannot help)
    ├── SoftTimeLimitExceeded     raised inside a task that ran past its soft limit
    ├── ClientClosed              the client was closed while a call waited
    ├── PayloadTooLarge           a body over the size limit (refused before sending)
    ├── LimitExceeded             a received message over a decode budget (digits, depth...)
    ├── ContentDisallowed         a content type or encoding the receiver does not accept
    ├── BadSignature              a signature missing, wrong, of an unknown key, or too old
    ├── TimeoutError              no reply within the call's timeout (also a builtin TimeoutError)
    └── RemoteError               the worker answered with an error
        ├── UnknownTask           the worker has no task of that name
        ├── InvalidArguments      arguments failed validation on the worker
        ├── InvalidResult         the task's result failed validation or serialization
        ├── BadRequest            the request could not be decoded
        ├── DeadlineExceeded      the request reached a worker too late and was not run
        ├── TimeLimitExceeded     the task ran past its time limit and was stopped
        ├── WorkerLost            the process running the task died
        │   └── PoisonRequest     ... every time: dead-lettered after its delivery limit
        └── Revoked               the request was revoked (``taskrpc revoke``) and not run

Remote errors travel as data (type name, message, traceback text); the caller never
imports a name taken from a message. A worker refusing a request (content type, size,
signature) answers :class:`BadRequest` whose ``type_name`` names the refusal, e.g.
``"ContentDisallowed"``; a plain task failure is rebuilt as its own type only if the
caller allowed that type (:meth:`taskrpc.App.allow_remote_exceptions`).
"""

from __future__ import annotations

import builtins
from typing import Any


class TaskRPCError(Exception):
    """Root of every exception taskrpc raises."""


class ConfigurationError(TaskRPCError):
    """Invalid settings, application path or task definition."""


class NotRegistered(TaskRPCError, KeyError):
    """The app has no task registered under that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BrokerError(TaskRPCError):
    """Talking to the broker failed."""


class ConnectionLost(BrokerError):
    """The broker connection or the reply queue was lost while the call was pending."""


class Unroutable(BrokerError):
    """The broker returned the request: no queue is bound to its routing key."""


class NoQuorum(BrokerError):
    """The broker did not confirm a request to a quorum queue in time; the queue has
    probably lost its majority.

    A quorum queue without a majority of its nodes neither confirms nor refuses
    publishes: the broker holds them, and queues them if the majority returns. Rather
    than wait for its deadline, the call fails once ``Settings.publish_confirm_timeout``
    has passed since its request was published. The request may still be queued and
    run, if the majority returns before the call's deadline; it is not sent again, even
    for an idempotent task (a second copy would wait behind the first).
    """


class AuthenticationFailed(BrokerError):
    """The broker refused the user name or password (``ACCESS_REFUSED`` at login)."""


class SoftTimeLimitExceeded(TaskRPCError):
    """Raised inside a task when it runs past its soft time limit; the task may catch it."""


class PayloadTooLarge(TaskRPCError, ValueError):
    """A message body is larger than ``Settings.max_message_size``."""


class LimitExceeded(TaskRPCError, ValueError):
    """A received message exceeds a decode budget; ``kind`` names which.

    A worker answers it as :class:`BadRequest` with ``type_name`` set to ``kind``:
    ``"IntegerTooLong"``, ``"NestingTooDeep"``, ``"TooManyElements"``,
    ``"TooManyHeaders"`` or ``"HeadersTooLarge"``.
    """

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class ContentDisallowed(TaskRPCError):
    """A message's content type or encoding is not in the receiver's accept list."""


class BadSignature(TaskRPCError):
    """A message's signature is missing, wrong, made with an unknown key, or too old."""


class ClientClosed(TaskRPCError):
    """The client was closed; pending and new calls fail with this."""


class TimeoutError(TaskRPCError, builtins.TimeoutError):  # noqa: A001 - deliberate shadow
    """No reply arrived before the deadline.

    Attributes:
        started: ``False`` when the request is known not to have run (it expired before
            a worker took it), ``None`` when that is not known.
    """

    def __init__(self, message: str, *, started: bool | None = None) -> None:
        super().__init__(message)
        self.started = started


class RemoteError(TaskRPCError):
    """The task failed on the worker.

    Attributes:
        type_name: Qualified name of the remote exception type, e.g. ``"ValueError"``.
        message: ``str()`` of the remote exception.
        remote_traceback: The formatted remote traceback, if the worker sent one.
        details: Extra structured data (for example validation errors).
    """

    #: Error code on the wire for this class; subclasses override it.
    code = "task_failed"

    def __init__(
        self,
        message: str,
        *,
        type_name: str = "Exception",
        remote_traceback: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type_name = type_name
        self.remote_traceback = remote_traceback
        self.details = details

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"


class UnknownTask(RemoteError):
    """The worker has no task registered under the requested name."""

    code = "unknown_task"


class InvalidArguments(RemoteError):
    """The arguments did not validate against the task's signature.

    ``details`` holds pydantic's error list; each entry's ``loc`` names the field.
    """

    code = "invalid_arguments"

    def errors(self) -> list[dict[str, Any]]:
        """The validation errors, one dict per failing field (like pydantic's ``errors()``)."""
        return list(self.details or [])


class InvalidResult(RemoteError):
    """The task ran, but its result did not match its return type or could not be encoded."""

    code = "invalid_result"


class BadRequest(RemoteError):
    """The worker could not decode the request (malformed body, missing fields)."""

    code = "bad_request"


class DeadlineExceeded(RemoteError):
    """The request's deadline passed before a worker started it; it was not run."""

    code = "deadline_exceeded"


class TimeLimitExceeded(RemoteError):
    """The task ran past its soft (uncaught) or hard time limit and was stopped."""

    code = "time_limit_exceeded"


class WorkerLost(RemoteError):
    """The worker process running the task died before it finished."""

    code = "worker_lost"


class Revoked(RemoteError):
    """The request was revoked before a worker started it (or while it ran); see
    :meth:`taskrpc.App.revoke`."""

    code = "revoked"


class PoisonRequest(WorkerLost):
    """The request was dead-lettered after its quorum queue's delivery limit.

    Every worker that took it was lost before answering (a task that kills its process,
    say); it will not be delivered again. ``details`` holds ``delivery_count`` and
    ``queue``.
    """

    code = "poison_request"

    @property
    def delivery_count(self) -> int | None:
        """How many times the broker delivered the request, if the worker said."""
        details = self.details if isinstance(self.details, dict) else {}
        count = details.get("delivery_count")
        return count if isinstance(count, int) else None


#: Wire error code -> exception class used to rebuild it on the caller.
ERROR_CODES: dict[str, type[RemoteError]] = {
    cls.code: cls
    for cls in (
        RemoteError,
        UnknownTask,
        InvalidArguments,
        InvalidResult,
        BadRequest,
        DeadlineExceeded,
        TimeLimitExceeded,
        WorkerLost,
        PoisonRequest,
        Revoked,
    )
}
