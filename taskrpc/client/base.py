"""What the sync and async clients share: building requests and reading replies."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pydantic_core

from ..exceptions import ConfigurationError, RemoteError
from ..messages import HEADER_PROTOCOL, HEADER_TASK, PROTOCOL_VERSION, ReplyBody
from ..serializers import ContentDisallowed

if TYPE_CHECKING:
    from ..app import App

#: Turns the JSON-ready result into what the caller gets back (e.g. a pydantic model).
ResultLoader = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """An encoded request, ready to publish."""

    id: str
    task: str
    queue: str
    body: bytes
    content_type: str
    properties: dict[str, Any]
    headers: dict[str, Any]
    deadline: float


class RequestBuilder:
    """Encodes calls into requests for one app; shared by every client of that app."""

    def __init__(self, app: App) -> None:
        self.app = app
        settings = app.settings
        self._serializer = app.serializers.by_name(settings.serializer)
        self._delivery_mode = 2 if settings.persistent_requests else 1
        self._default_timeout = settings.default_timeout

    def build(
        self,
        task: str,
        args: tuple[Any, ...] | list[Any],
        kwargs: dict[str, Any] | None,
        *,
        reply_to: str | None,
        queue: str,
        timeout: float | None,
    ) -> OutgoingRequest:
        """Encode one call.

        Raises:
            ConfigurationError: The timeout is not positive.
            TypeError: An argument cannot be represented as JSON-compatible data.
        """
        timeout = self._default_timeout if timeout is None else float(timeout)
        if not timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout!r}")
        try:
            data = pydantic_core.to_jsonable_python({"args": args, "kwargs": kwargs or {}})
        except pydantic_core.PydanticSerializationError as exc:
            raise TypeError(f"arguments of {task} cannot be sent: {exc}") from None
        body = self._serializer.dumps(data)
        request_id = uuid.uuid4().hex
        properties: dict[str, Any] = {
            "correlation_id": request_id,
            "message_id": request_id,
            "delivery_mode": self._delivery_mode,
        }
        if reply_to:
            properties["reply_to"] = reply_to
        return OutgoingRequest(
            id=request_id,
            task=task,
            queue=queue,
            body=body,
            content_type=self._serializer.content_type,
            properties=properties,
            headers={HEADER_PROTOCOL: PROTOCOL_VERSION, HEADER_TASK: task},
            deadline=time.monotonic() + timeout,
        )


def read_reply(
    app: App, body: bytes, content_type: str | None, load_result: ResultLoader | None
) -> Any:
    """Decode a reply: return the (re-typed) result or raise the remote error.

    Raises:
        RemoteError: The task failed remotely (a typed subclass where the code is known),
            or the reply itself could not be read.
    """
    try:
        data = app.serializers.for_content_type(content_type).loads(body)
        reply = ReplyBody.model_validate(data)
    except (ContentDisallowed, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise RemoteError(f"unreadable reply: {exc}", type_name="BadReply") from None
    if not reply.ok:
        error = reply.error
        if error is None:
            raise RemoteError("error reply without error details", type_name="BadReply")
        raise error.to_exception()
    return reply.result if load_result is None else load_result(reply.result)
