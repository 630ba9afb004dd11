"""Turn one request into one encoded reply: decode -> find task -> validate -> run -> encode.

Pure and picklable at its edges, so every pool (solo, threads, processes) runs the same
code. Nothing raised here escapes: every failure becomes an error reply.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pydantic
import pydantic_core

from ..exceptions import BadRequest, InvalidResult, RemoteError, UnknownTask
from ..messages import ErrorInfo, Outcome, ReplyBody, RequestBody
from ..serializers import ContentDisallowed

if TYPE_CHECKING:
    from ..app import App

logger = logging.getLogger("taskrpc.worker")


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """A request as the executor needs it: picklable, no broker objects."""

    request_id: str
    task: str
    body: bytes
    content_type: str | None
    redelivered: bool = False


def execute(app: App, job: Job) -> Outcome:
    """Run ``job`` against ``app``'s registry and return the encoded reply."""
    serializer = app.serializers.by_name(app.settings.serializer)
    try:
        reply = ReplyBody(ok=True, result=_run(app, job))
    except RemoteError as exc:
        reply = ReplyBody(ok=False, error=ErrorInfo.from_exception(exc))
    except Exception as exc:
        logger.info("task %s [%s] raised %s", job.task, job.request_id, type(exc).__name__)
        reply = ReplyBody(ok=False, error=ErrorInfo.from_exception(exc))
    try:
        body = serializer.dumps(reply.model_dump(mode="json"))
    except (ValueError, TypeError) as exc:  # checked before replying, as promised
        error = InvalidResult(f"result could not be encoded: {exc}", type_name=type(exc).__name__)
        reply = ReplyBody(ok=False, error=ErrorInfo.from_exception(error))
        body = serializer.dumps(reply.model_dump(mode="json"))
    code = reply.error.code if reply.error else None
    return Outcome(ok=reply.ok, body=body, content_type=serializer.content_type, error_code=code)


def error_outcome(app: App, error: RemoteError) -> Outcome:
    """An encoded error reply, for failures found before a job reaches a pool."""
    serializer = app.serializers.by_name(app.settings.serializer)
    reply = ReplyBody(ok=False, error=ErrorInfo.from_exception(error))
    return Outcome(
        ok=False,
        body=serializer.dumps(reply.model_dump(mode="json")),
        content_type=serializer.content_type,
        error_code=error.code,
    )


def _run(app: App, job: Job) -> Any:
    task = app.tasks.get(job.task)
    if task is None:
        raise UnknownTask(f"no task named {job.task!r} on this worker", type_name="UnknownTask")
    request = _decode(app, job)
    value = task.run(request.args, request.kwargs)
    try:
        return task.signature.dump_result(value)
    except pydantic.ValidationError as exc:
        raise InvalidResult(
            f"{task.name} returned a value that does not match its return type: {exc}",
            type_name="ValidationError",
        ) from None
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidResult(str(exc), type_name="PydanticSerializationError") from None


def _decode(app: App, job: Job) -> RequestBody:
    try:
        data = app.serializers.for_content_type(job.content_type).loads(job.body)
    except ContentDisallowed as exc:
        raise BadRequest(str(exc), type_name="ContentDisallowed") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"undecodable body: {exc}", type_name="DecodeError") from None
    if not isinstance(data, Mapping):
        raise BadRequest("request body must be an object", type_name="DecodeError")
    try:
        return RequestBody.model_validate(data)
    except pydantic.ValidationError as exc:
        raise BadRequest(f"malformed request body: {exc}", type_name="ValidationError") from None
