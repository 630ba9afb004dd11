"""Turn one request into one encoded reply: decode -> find task -> validate -> run -> encode.

Pure and picklable at its edges, so every pool (solo, threads, processes) runs the same
code. Nothing raised here escapes: every failure becomes an error reply.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pydantic
import pydantic_core

from ..context import RequestContext, set_current
from ..exceptions import (
    BadRequest,
    DeadlineExceeded,
    InvalidArguments,
    InvalidResult,
    LimitExceeded,
    PayloadTooLarge,
    RemoteError,
    SoftTimeLimitExceeded,
    TimeLimitExceeded,
    UnknownTask,
)
from ..messages import ErrorInfo, Outcome, ReplyBody, RequestBody
from ..middleware import run_hooks
from ..serializers import ContentDisallowed

if TYPE_CHECKING:
    from ..app import App
    from ..task import Task

logger = logging.getLogger("taskrpc.worker")


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """A request as the executor needs it: picklable, no broker objects."""

    request_id: str
    task: str
    body: bytes
    content_type: str | None
    content_encoding: str | None = None
    headers: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Absolute deadline, seconds since the epoch, or ``None``.
    deadline: float | None = None
    redelivered: bool = False
    #: Earlier deliveries (a quorum queue's ``x-delivery-count``; else 1 if redelivered).
    delivery_count: int = 0
    #: The ``reply_to`` property, if any.
    reply_to: str | None = None
    #: The routing key it arrived with (the queue's name, for taskrpc's bindings).
    routing_key: str = ""
    #: A plain request (no taskrpc headers) for the bare task ``task``.
    bare: bool = False


def execute(app: App, job: Job) -> Outcome:
    """Run ``job`` against ``app``'s registry and return the encoded reply."""
    if job.bare:
        from .bare import execute_bare

        return execute_bare(app, job)
    task = app.tasks.get(job.task)
    serializer = (task and task.reply_serializer) or app.codec.serializer_for(
        job.content_type, app.settings.serializer
    )
    tries = [0]  # retries made, reported with the outcome
    try:
        reply = ReplyBody(ok=True, result=_run(app, job, tries))
    except _REFUSALS as exc:
        # A refused request is logged (once, rate-limited) by the consume loop, which
        # rejects it; a late one only here.
        late = isinstance(exc, DeadlineExceeded)
        logger.log(
            logging.WARNING if late else logging.DEBUG,
            "request %s [%s] refused: %s",
            job.task,
            job.request_id,
            exc,
        )
        reply = ReplyBody(ok=False, error=ErrorInfo.from_exception(exc))
    except Exception as exc:
        log_failure(task, job, exc)
        reply = ReplyBody(ok=False, error=ErrorInfo.from_exception(exc))
    outcome = encode_reply(app, reply, serializer)
    return dataclasses.replace(outcome, retries=tries[0]) if tries[0] else outcome


#: Requests a worker does not run: it answers why, and logs one line without a traceback.
_REFUSALS = (UnknownTask, BadRequest, InvalidArguments, DeadlineExceeded)


def log_failure(task: Task[Any, Any] | None, job: Job, exc: BaseException) -> None:
    """Log a failed run with its message and traceback: at WARNING if the task declares
    the error as expected (``throws=``), else at ERROR."""
    expected = task is not None and isinstance(exc, task.throws)
    logger.log(
        logging.WARNING if expected else logging.ERROR,
        "task %s [%s] failed: %s: %s",
        job.task,
        job.request_id,
        type(exc).__name__,
        exc,
        exc_info=exc,
    )


def error_outcome(app: App, error: RemoteError, content_type: str | None = None) -> Outcome:
    """An encoded error reply, for failures found outside a task run."""
    serializer = app.codec.serializer_for(content_type, app.settings.serializer)
    return encode_reply(app, ReplyBody(ok=False, error=ErrorInfo.from_exception(error)), serializer)


def encode_reply(app: App, reply: ReplyBody, serializer: str) -> Outcome:
    """Encode ``reply``; if the result cannot be encoded, encode an error reply instead.

    Tracebacks leave the worker only when ``Settings.send_tracebacks`` is on.
    """
    error = reply.error
    if error is not None and error.traceback and not app.settings.send_tracebacks:
        reply = reply.model_copy(update={"error": error.model_copy(update={"traceback": None})})
    try:
        encoded = app.codec.encode(reply.model_dump(mode="json"), serializer)
    except (ValueError, TypeError) as exc:  # checked before replying, as promised
        kind = "too large" if isinstance(exc, PayloadTooLarge) else "not encodable"
        failure = InvalidResult(f"result {kind}: {exc}", type_name=type(exc).__name__)
        reply = ReplyBody(ok=False, error=ErrorInfo.from_exception(failure))
        encoded = app.codec.encode(reply.model_dump(mode="json"), app.settings.serializer)
    info = reply.error
    return Outcome(
        ok=reply.ok,
        body=encoded.body,
        content_type=encoded.content_type,
        content_encoding=encoded.content_encoding,
        error_code=info.code if info else None,
        error_type=info.type if info else None,
        error_message=info.message[:500] if info else None,
    )


def _run(app: App, job: Job, tries: list[int]) -> Any:
    if job.deadline is not None and time.time() > job.deadline:
        raise DeadlineExceeded(
            f"request {job.request_id} reached the worker after its deadline; not run",
            type_name="DeadlineExceeded",
        )
    task = app.tasks.get(job.task)
    if task is None:
        raise UnknownTask(f"no task named {job.task!r} on this worker", type_name="UnknownTask")
    request = _decode(app, job, task.signature.element_bound)
    value = _run_with_retries(app, task, job, request, tries)
    try:
        return task.signature.dump_result(value)
    except pydantic.ValidationError as exc:
        raise InvalidResult(
            f"{task.name} returned a value that does not match its return type: {exc}",
            type_name="ValidationError",
        ) from None
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidResult(str(exc), type_name="PydanticSerializationError") from None


def _run_with_retries(
    app: App,
    task: Task[Any, Any],
    job: Job,
    request: RequestBody,
    tries: list[int] | None = None,
) -> Any:
    """Run ``task``, retrying by its policy; ``tries[0]`` is set to the retries made."""
    policy = task.retry or app.retry
    retries, last_error = 0, None
    while True:
        context = RequestContext(
            id=job.request_id,
            task=task.name,
            retries=retries,
            last_error=last_error,
            deadline=job.deadline,
            redelivered=job.redelivered,
            delivery_count=job.delivery_count,
        )
        token = set_current(context)
        run_hooks(app.middleware, "before_task", context)
        try:
            value = task.execute(request.args, request.kwargs, strict=app.settings.strict_arguments)
            run_hooks(reversed(app.middleware), "after_task", context, None)
            return value
        except SoftTimeLimitExceeded as exc:
            run_hooks(reversed(app.middleware), "after_task", context, exc)
            raise TimeLimitExceeded(str(exc), type_name="SoftTimeLimitExceeded") from None
        except Exception as exc:
            run_hooks(reversed(app.middleware), "after_task", context, exc)
            retries += 1
            if not policy.should_retry(retries, exc):
                raise
            delay = policy.delay(retries)
            if job.deadline is not None and time.time() + delay >= job.deadline:
                raise  # a retry could not finish in time: report this failure
            last_error = repr(exc)
            if tries is not None:
                tries[0] = retries
            logger.warning(
                "task %s [%s] failed with %s; retry %d/%d in %.2f s",
                task.name,
                job.request_id,
                last_error,
                retries,
                policy.max_retries,
                delay,
            )
            time.sleep(delay)
        finally:
            token.var.reset(token)


def _decode(app: App, job: Job, max_elements: int | None) -> RequestBody:
    try:
        data = app.codec.decode(
            job.body, job.content_type, job.content_encoding, job.headers,
            max_elements=max_elements,
        )  # fmt: skip
    except ContentDisallowed as exc:
        raise BadRequest(str(exc), type_name="ContentDisallowed") from None
    except PayloadTooLarge as exc:
        raise BadRequest(str(exc), type_name="PayloadTooLarge") from None
    except LimitExceeded as exc:
        message = str(exc)
        if exc.kind == "TooManyElements" and (max_elements or 1 << 62) < app.codec.max_elements:
            message = (
                f"more than {max_elements} arrays, objects and items in one body: more "
                f"than the arguments of {job.task!r} can hold"
            )
        raise BadRequest(message, type_name=exc.kind) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"undecodable body: {exc}", type_name="DecodeError") from None
    except Exception as exc:  # a serializer failing otherwise is still a bad body
        raise BadRequest(
            f"undecodable body: {type(exc).__name__}: {exc}", type_name="DecodeError"
        ) from None
    if not isinstance(data, Mapping):
        raise BadRequest("request body must be an object", type_name="DecodeError")
    try:
        return RequestBody.model_validate(data)
    except pydantic.ValidationError as exc:
        raise BadRequest(f"malformed request body: {exc}", type_name="ValidationError") from None
    except RecursionError:
        raise BadRequest("request body nested too deep", type_name="NestingTooDeep") from None
