"""Bare mode: answering plain AMQP clients that know nothing of taskrpc.

A bare task's queue also takes messages without taskrpc headers. The body, decoded with
the task's serializer, is the task's argument (for a task of several parameters, a list
holds the positional arguments and an object the keyword ones); the reply body is the
result encoded the same way. A failure is answered with an error body instead: with the
``text`` serializer ``error: <code>: <message>``, otherwise
``{"error": {"code": ..., "type": ..., "message": ...}}``. Replies go to ``reply_to``
with the request's ``correlation_id``, as always; bare bodies are never compressed.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

import pydantic

from ..exceptions import BadRequest, ContentDisallowed, InvalidArguments, PayloadTooLarge
from ..messages import ErrorInfo, Outcome, RequestBody
from .executor import Job, _run_with_retries, log_failure

if TYPE_CHECKING:
    from ..app import App
    from ..task import Task

logger = logging.getLogger("taskrpc.worker")


def execute_bare(app: App, job: Job) -> Outcome:
    """Run a bare request for the task ``job.task`` and encode its bare reply."""
    task = app.tasks[job.task]
    serializer = task.serializer or app.settings.serializer
    try:
        result = _run(app, task, job, serializer)
        encoded = app.codec.encode(result, serializer, compress_body=False)
    except (BadRequest, InvalidArguments) as exc:
        logger.warning("bare request %s [%s] refused: %s", task.name, job.request_id, exc)
        return bare_error(app, job, exc)
    except Exception as exc:
        log_failure(task, job, exc)
        return bare_error(app, job, exc)
    return Outcome(ok=True, body=encoded.body, content_type=encoded.content_type)


def bare_error(app: App, job: Job, error: BaseException) -> Outcome:
    """An error reply in the bare task's own format."""
    info = ErrorInfo.from_exception(error)
    task = app.tasks.get(job.task)
    serializer = app.serializers.by_name((task and task.serializer) or app.settings.serializer)
    try:
        data = {"error": {"code": info.code, "type": info.type, "message": info.message}}
        body = serializer.dumps(data)
    except ValueError:  # a text-like serializer: one line
        body = serializer.dumps(f"error: {info.code}: {info.message}")
    return Outcome(ok=False, body=body, content_type=serializer.content_type, error_code=info.code)


def _run(app: App, task: Task[Any, Any], job: Job, serializer: str) -> Any:
    try:
        data = app.codec.decode_as(
            job.body, serializer, job.content_type, job.content_encoding,
            max_elements=task.signature.element_bound,
        )  # fmt: skip
    except (ContentDisallowed, PayloadTooLarge, ValueError) as exc:
        kind = getattr(exc, "kind", type(exc).__name__)  # LimitExceeded: the budget's name
        raise BadRequest(f"undecodable body: {exc}", type_name=kind) from None
    args, kwargs = _arguments(task, data)
    try:
        request = RequestBody.model_validate({"args": args, "kwargs": kwargs})
    except pydantic.ValidationError as exc:
        raise BadRequest(f"malformed arguments: {exc}", type_name="ValidationError") from None
    return task.signature.dump_result(_run_with_retries(app, task, job, request))


def _arguments(task: Task[Any, Any], data: Any) -> tuple[list[Any], dict[str, Any]]:
    """The body is the argument of a one-parameter task; else a list or an object of them."""
    parameters = inspect.signature(task.fn).parameters
    if len(parameters) == 1:
        return [data], {}
    if isinstance(data, list):
        return data, {}
    if isinstance(data, dict):
        return [], data
    if not parameters and data in ("", None):
        return [], {}
    raise BadRequest(
        f"{task.name} takes {len(parameters)} arguments: send a list or an object",
        type_name="BadRequest",
    )
