"""What the sync and async clients share: building requests and reading replies."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pydantic_core

from ..exceptions import ConfigurationError, DeadlineExceeded, RemoteError, TimeoutError
from ..messages import HEADER_DEADLINE, HEADER_PROTOCOL, HEADER_TASK, PROTOCOL_VERSION, ReplyBody
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
    content_encoding: str
    properties: dict[str, Any]
    headers: dict[str, Any]
    #: When the caller stops waiting, on this process's ``time.monotonic()`` clock.
    deadline: float


class RequestBuilder:
    """Encodes calls into requests for one app; shared by every client of that app."""

    def __init__(self, app: App) -> None:
        self.app = app
        settings = app.settings
        self._codec = app.codec
        self._serializer = settings.serializer
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
        request_id: str | None = None,
    ) -> OutgoingRequest:
        """Encode one call.

        The timeout becomes an absolute deadline: carried in the ``taskrpc-deadline``
        header (checked by the worker before it starts the task) and as the message's
        AMQP ``expiration`` (so the broker drops a request nobody took in time).

        Raises:
            ConfigurationError: The timeout is not positive.
            TypeError: An argument cannot be represented as JSON-compatible data.
            PayloadTooLarge: The encoded request exceeds ``max_message_size``.
        """
        timeout = self._default_timeout if timeout is None else float(timeout)
        if not timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout!r}")
        try:
            data = pydantic_core.to_jsonable_python({"args": args, "kwargs": kwargs or {}})
        except pydantic_core.PydanticSerializationError as exc:
            raise TypeError(f"arguments of {task} cannot be sent: {exc}") from None
        encoded = self._codec.encode(data, self._serializer)
        request_id = request_id or uuid.uuid4().hex
        properties: dict[str, Any] = {
            "correlation_id": request_id,
            "message_id": request_id,
            "delivery_mode": self._delivery_mode,
            "expiration": str(max(1, int(timeout * 1000))),
        }
        if reply_to:
            properties["reply_to"] = reply_to
        return OutgoingRequest(
            id=request_id,
            task=task,
            queue=queue,
            body=encoded.body,
            content_type=encoded.content_type,
            content_encoding=encoded.content_encoding,
            properties=properties,
            headers={
                HEADER_PROTOCOL: PROTOCOL_VERSION,
                HEADER_TASK: task,
                HEADER_DEADLINE: time.time() + timeout,
                **encoded.headers,
            },
            deadline=time.monotonic() + timeout,
        )


def read_reply(
    app: App,
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    load_result: ResultLoader | None,
) -> Any:
    """Decode a reply: return the (re-typed) result or raise the remote error.

    Raises:
        RemoteError: The task failed remotely (a typed subclass where the code is known),
            or the reply itself could not be read.
        TimeoutError: The worker refused the request because its deadline had passed
            (``started`` is ``False``).
    """
    try:
        data = app.codec.decode(body, content_type, content_encoding)
        reply = ReplyBody.model_validate(data)
    except (ContentDisallowed, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise RemoteError(f"unreadable reply: {exc}", type_name="BadReply") from None
    if not reply.ok:
        if reply.error is None:
            raise RemoteError("error reply without error details", type_name="BadReply")
        exception = reply.error.to_exception()
        if isinstance(exception, DeadlineExceeded):  # it never ran: say so
            raise TimeoutError(str(exception), started=False) from exception
        raise exception
    return reply.result if load_result is None else load_result(reply.result)
