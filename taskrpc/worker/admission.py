"""Checks the worker's loop makes before a request reaches a pool: size, headers, signature.

Nothing here decodes the body. A refused request is answered with an error reply (if it
has a ``reply_to``) and acknowledged like any other request, so it never comes back.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..budgets import check_headers
from ..exceptions import BadRequest, BadSignature, LimitExceeded, RemoteError
from ..messages import HEADER_DEADLINE, HEADER_PROTOCOL, HEADER_TASK, PROTOCOL_VERSION, Outcome
from ..security.signing import Envelope
from .executor import Job, error_outcome

if TYPE_CHECKING:
    from ..app import App

logger = logging.getLogger("taskrpc.worker")


def admit(app: App, job: Job) -> Outcome | None:
    """``None`` if ``job`` may run, else the error reply refusing it.

    Every refusal here comes before or at the signature (size, header budgets, headers,
    signature): it is of a request not verified, its reply is marked so, and a signing
    worker sends it unsigned.
    """
    error = _refusal_of(_check, app, job)
    if error is None:
        return None
    return dataclasses.replace(refusal(app, job, error), verified=False)


def _refusal_of(check: Callable[[App, Job], None], app: App, job: Job) -> RemoteError | None:
    try:
        check(app, job)
    except RemoteError as exc:
        # Logged (once, rate-limited) by the consume loop when it rejects the request.
        logger.debug("request %s [%s] refused: %s", job.task or "-", job.request_id, exc)
        return exc
    except Exception as exc:  # a check that breaks must not stop the worker's loop
        logger.warning(
            "request %s [%s] could not be checked: %s: %s",
            job.task or "-",
            job.request_id,
            type(exc).__name__,
            exc,
        )
        return BadRequest(f"request could not be checked: {exc}", type_name=type(exc).__name__)
    return None


def refusal(app: App, job: Job, error: RemoteError) -> Outcome:
    """The reply refusing ``job``: an error envelope, or a bare error body for bare jobs."""
    if job.bare:
        from .bare import bare_error

        return bare_error(app, job, error)
    return error_outcome(app, error, job.content_type)


def request_envelope(job: Job) -> Envelope:
    """What a request's signature covers besides its body."""
    return Envelope(
        kind="request",
        content_type=job.content_type,
        content_encoding=job.content_encoding,
        correlation_id=job.request_id,
        reply_to=job.reply_to,
        routing_key=job.routing_key,
        headers=job.headers,
    )


def _check(app: App, job: Job) -> None:
    size, limit = len(job.body), app.codec.max_size
    if size > limit:
        raise BadRequest(
            f"body of {size} bytes exceeds the limit of {limit}", type_name="PayloadTooLarge"
        )
    settings = app.settings
    try:
        check_headers(
            job.headers, max_count=settings.max_headers, max_bytes=settings.max_header_bytes
        )
    except LimitExceeded as exc:
        raise BadRequest(str(exc), type_name=exc.kind) from None
    if not job.bare:
        _check_headers(app, job)
    try:
        app.codec.verify(job.body, request_envelope(job), redelivered=job.redelivered)
    except BadSignature as exc:
        raise BadRequest(str(exc), type_name="BadSignature") from None


def _check_headers(app: App, job: Job) -> None:
    headers = job.headers
    protocol = headers.get(HEADER_PROTOCOL)
    if protocol is not None and (type(protocol) is not int or protocol != PROTOCOL_VERSION):
        raise BadRequest(
            f"unsupported protocol version {str(protocol)[:40]!r}; this worker speaks "
            f"{PROTOCOL_VERSION}",
            type_name="BadRequest",
        )
    if not job.task:
        raise BadRequest(f"request has no {HEADER_TASK!r} header", type_name="BadRequest")
    deadline = headers.get(HEADER_DEADLINE)
    if deadline is not None and (
        isinstance(deadline, bool)
        or not isinstance(deadline, (int, float))
        or not math.isfinite(deadline)
    ):
        raise BadRequest(f"malformed {HEADER_DEADLINE!r} header", type_name="BadRequest")
