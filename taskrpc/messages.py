"""The wire envelope: request and reply bodies, headers, and their AMQP properties.

``docs/protocol.rst`` describes the same format for implementers in other languages;
keep the two in step.
"""

from __future__ import annotations

import dataclasses
import traceback
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .exceptions import ERROR_CODES, RemoteError

#: Version of the wire format carried in every taskrpc message.
PROTOCOL_VERSION = 1
#: Header naming the protocol version.
HEADER_PROTOCOL = "taskrpc-protocol"
#: Header naming the task a request is for.
HEADER_TASK = "taskrpc-task"
#: Header on requests: the absolute deadline, in seconds since the Unix epoch (float).
HEADER_DEADLINE = "taskrpc-deadline"
#: Header on requests: when the client sent it, in seconds since the Unix epoch (float).
HEADER_SENT_AT = "taskrpc-sent-at"
#: Header on replies: ``"ok"`` or ``"error"``.
HEADER_STATUS = "taskrpc-status"


class RequestBody(BaseModel):
    """Body of a request: positional and keyword arguments, already JSON-compatible."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)


class ErrorInfo(BaseModel):
    """An error, as data: enough to rebuild a typed exception on the caller."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: str = RemoteError.code
    type: str = "Exception"
    message: str = ""
    traceback: str | None = None
    details: Any = None

    @classmethod
    def from_exception(cls, exc: BaseException, *, code: str | None = None) -> ErrorInfo:
        """Describe ``exc``; ``code`` defaults to the code of a :class:`RemoteError`."""
        if isinstance(exc, RemoteError):
            return cls(
                code=code or exc.code,
                type=exc.type_name,
                message=exc.message,
                traceback=exc.remote_traceback,
                details=exc.details,
            )
        return cls(
            code=code or RemoteError.code,
            type=_qualified_name(type(exc)),
            message=str(exc),
            traceback="".join(traceback.format_exception(exc)),
        )

    def to_exception(self) -> RemoteError:
        """Rebuild the typed exception; unknown codes become a plain :class:`RemoteError`."""
        cls = ERROR_CODES.get(self.code, RemoteError)
        return cls(
            self.message, type_name=self.type, remote_traceback=self.traceback, details=self.details
        )


class ReplyBody(BaseModel):
    """Body of a reply: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {...}}``."""

    # NaN/Infinity stay floats here; the serializer decides how to write them.
    model_config = ConfigDict(extra="ignore", frozen=True, ser_json_inf_nan="strings")

    ok: bool
    result: Any = None
    error: ErrorInfo | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What running a request produced, ready to publish: an encoded reply body.

    Small and picklable, so a process pool can hand it back to the worker's loop.
    """

    ok: bool
    body: bytes
    content_type: str
    content_encoding: str = "binary"
    error_code: str | None = None
    #: The error's type name and message (for logs, metrics and the dashboard).
    error_type: str | None = None
    error_message: str | None = None
    #: Retries the worker made before this outcome.
    retries: int = 0
    #: ``False`` for the refusal of a request that failed its checks before or at its
    #: signature: a signing worker sends such a reply unsigned (see the security guide).
    verified: bool = True


def request_headers(task: str) -> dict[str, Any]:
    """Headers every taskrpc request carries."""
    return {HEADER_PROTOCOL: PROTOCOL_VERSION, HEADER_TASK: task}


def reply_headers(ok: bool) -> dict[str, Any]:
    """Headers every taskrpc reply carries."""
    return {HEADER_PROTOCOL: PROTOCOL_VERSION, HEADER_STATUS: "ok" if ok else "error"}


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
