"""Refusals the consume loop makes itself, besides those of :mod:`.admission`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import BadRequest
from ..messages import Outcome
from .admission import refusal
from .executor import Job

if TYPE_CHECKING:
    from ..app import App


def too_large(app: App, job: Job, announced: int) -> Outcome:
    """The refusal of a request whose body of ``announced`` bytes the transport dropped
    unread, as :func:`~.admission.admit` would refuse it."""
    limit = app.codec.max_size
    error = BadRequest(
        f"body of {announced} bytes exceeds the limit of {limit}", type_name="PayloadTooLarge"
    )
    return refusal(app, job, error)


def replayed(app: App, job: Job) -> Outcome:
    """The refusal of a redelivered request this worker answered already, though the
    reply cache forgot it: its signature is not accepted a second time."""
    error = BadRequest(
        "request replayed: this worker answered it already", type_name="BadSignature"
    )
    return refusal(app, job, error)
