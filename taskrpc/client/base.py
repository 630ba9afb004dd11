"""What the sync and async clients share: building requests and reading replies."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pydantic_core

from .. import delays
from ..exceptions import (
    BadSignature,
    ConfigurationError,
    ContentDisallowed,
    DeadlineExceeded,
    InvalidResult,
    PayloadTooLarge,
    RemoteError,
    TimeoutError,
)
from ..messages import (
    HEADER_DEADLINE,
    HEADER_PROTOCOL,
    HEADER_SENT_AT,
    HEADER_TASK,
    PROTOCOL_VERSION,
    ReplyBody,
)
from ..security.signing import Envelope
from .replies import PendingCall, RawReply

if TYPE_CHECKING:
    from ..app import App
    from ..codec import Codec

#: Turns the JSON-ready result into what the caller gets back (e.g. a pydantic model).
ResultLoader = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """An encoded request, ready to publish.

    Its :attr:`headers` are made when read. If the app signs, they carry a fresh
    signature over the body and the properties as they are at that moment: a request is
    signed when it is published, ``reply_to`` included, and signed anew when resent.
    """

    id: str
    task: str
    queue: str
    body: bytes
    content_type: str
    content_encoding: str
    properties: dict[str, Any]
    #: The headers before signing.
    base_headers: dict[str, Any]
    #: When the caller stops waiting, on this process's ``time.monotonic()`` clock.
    deadline: float
    #: Signs the request when its headers are read; ``None`` (or no signer): unsigned.
    codec: Codec | None = dataclasses.field(default=None, repr=False, compare=False)
    #: When a delayed request is due, on the ``time.monotonic()`` clock; ``None``: now.
    #: It is published into the delay cascade (:mod:`taskrpc.delays`) for the time left
    #: at the moment of publishing.
    due: float | None = None
    #: Fire-and-forget: no ``reply_to``; the call settles when the broker confirms it.
    fire: bool = False

    def route(self, default_exchange: str) -> tuple[str, str]:
        """The exchange and routing key to publish to now."""
        if self.due is not None:
            milliseconds = delays.delay_milliseconds(self.due - time.monotonic())
            if milliseconds:
                key = delays.routing_key(milliseconds, self.queue)
                return delays.entry_exchange(milliseconds), key
        return default_exchange, self.queue

    @property
    def headers(self) -> dict[str, Any]:
        """The headers to publish: :attr:`base_headers`, signed now if the app signs."""
        if self.codec is None or not self.codec.signs:
            return self.base_headers
        envelope = Envelope(
            kind="request",
            content_type=self.content_type,
            content_encoding=self.content_encoding,
            correlation_id=self.properties.get("correlation_id"),
            reply_to=self.properties.get("reply_to"),
            routing_key=self.queue,
            headers=self.base_headers,
        )
        return {**self.base_headers, **self.codec.sign(self.body, envelope)}


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
        serializer: str | None = None,
        delay: float = 0.0,
        fire: bool = False,
        priority: int | None = None,
    ) -> OutgoingRequest:
        """Encode one call.

        The serializer is, in order: ``serializer`` (this call's choice), the task's own
        (if this app knows the task), the app's; replies in it are accepted.

        The timeout becomes an absolute deadline: carried in the ``taskrpc-deadline``
        header (checked by the worker before it starts the task) and as the message's
        AMQP ``expiration`` (so the broker drops a request nobody took in time).

        A ``delay`` (seconds) sends the request through the broker's delay cascade: it
        reaches its queue that much later, with no ``expiration``, and its deadline
        counts from then.

        A ``fire`` (fire-and-forget) request expects no reply: without an explicit
        ``timeout`` it has no deadline and no expiration, and it is persistent if
        ``Settings.persistent_jobs`` says so. ``priority`` is the AMQP priority.

        Raises:
            ConfigurationError: The timeout is not positive.
            TypeError: An argument cannot be represented as JSON-compatible data.
            PayloadTooLarge: The encoded request exceeds ``max_message_size``; nothing
                was sent.
            ConfigurationError: No usable serializer has that name.
        """
        expires = not fire or timeout is not None
        timeout = self._default_timeout if timeout is None else float(timeout)
        if not timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout!r}")
        try:
            data = pydantic_core.to_jsonable_python({"args": args, "kwargs": kwargs or {}})
        except pydantic_core.PydanticSerializationError as exc:
            raise TypeError(f"arguments of {task} cannot be sent: {exc}") from None
        if serializer:
            self._codec.accept(serializer, side="reply")
        name = serializer or self._serializer_of(task)
        try:
            encoded = self._codec.encode(data, name)
        except PayloadTooLarge:
            raise
        except ValueError as exc:
            raise TypeError(f"arguments of {task} cannot be sent as {name}: {exc}") from None
        request_id = request_id or os.urandom(16).hex()  # 128 random bits
        properties: dict[str, Any] = {
            "correlation_id": request_id,
            "message_id": request_id,
            "delivery_mode": self._delivery_mode,
        }
        if fire and self.app.settings.persistent_jobs:
            properties["delivery_mode"] = 2
        if priority is not None:
            properties["priority"] = priority
        due = None
        if delay > 0:
            delays.delay_milliseconds(delay)  # not too long
            due = time.monotonic() + delay
            timeout += delay
        elif expires:
            properties["expiration"] = str(max(1, int(timeout * 1000)))
        if reply_to:
            properties["reply_to"] = reply_to
        now = time.time()
        return OutgoingRequest(
            id=request_id,
            task=task,
            queue=queue,
            body=encoded.body,
            content_type=encoded.content_type,
            content_encoding=encoded.content_encoding,
            properties=properties,
            base_headers={
                HEADER_PROTOCOL: PROTOCOL_VERSION,
                HEADER_TASK: task,
                **({HEADER_DEADLINE: now + timeout} if expires else {}),
                HEADER_SENT_AT: now,
                **encoded.headers,
            },
            deadline=time.monotonic() + timeout,
            codec=self._codec,
            due=due,
            fire=fire,
        )

    def _serializer_of(self, task: str) -> str:
        known = self.app.tasks.get(task)
        if known is not None and known.serializer and not known.bare:
            return known.serializer
        return self._serializer


def read_reply(app: App, reply: RawReply, load_result: ResultLoader | None) -> Any:
    """Decode a reply: return the (re-typed) result or raise the remote error.

    A signing app verifies the reply's signature (over its body, headers, correlation id
    and routing key) before decoding it.

    Raises:
        RemoteError: The task failed remotely (a typed subclass where the code is known,
            also an instance of the remote type if the app allowed it), or the reply
            itself could not be read (``type_name`` says why, e.g. ``ContentDisallowed``).
        TimeoutError: The worker refused the request because its deadline had passed
            (``started`` is ``False``).
    """
    body, content_type, content_encoding = reply.body, reply.content_type, reply.content_encoding
    try:
        envelope = Envelope(
            "reply",
            content_type,
            content_encoding,
            reply.correlation_id,
            None,
            reply.routing_key,
            reply.headers or {},
        )
        app.codec.verify(body, envelope)
        data = app.codec.decode(body, content_type, content_encoding, side="reply")
        decoded = ReplyBody.model_validate(data)
    except (BadSignature, ContentDisallowed, ValueError) as exc:  # ValidationError: ValueError
        kind = type(exc).__name__
        kind = (
            kind
            if isinstance(exc, (BadSignature, ContentDisallowed, PayloadTooLarge))
            else "BadReply"
        )
        raise RemoteError(f"unreadable reply: {exc}", type_name=kind) from None
    if not decoded.ok:
        if decoded.error is None:
            raise RemoteError("error reply without error details", type_name="BadReply")
        exception = decoded.error.to_exception()
        if isinstance(exception, DeadlineExceeded):  # it never ran: say so
            raise TimeoutError(str(exception), started=False) from exception
        raise app.remote_exceptions.rebuild(exception)
    if load_result is None:
        return decoded.result
    try:
        return load_result(decoded.result)
    except ValueError as exc:  # pydantic's ValidationError
        raise InvalidResult(
            f"the result does not match the task's return type here: {exc}",
            type_name=type(exc).__name__,
        ) from None


def sent(call: PendingCall, settled: bool) -> str:
    """The id of a fire-and-forget call the broker confirmed, or its failure raised."""
    if not settled:
        raise TimeoutError(f"the broker did not confirm {call.task} [{call.id}] in time")
    _, error = call.outcome()
    if error is not None:
        raise error
    return call.id


def no_result(task: str, call_id: str) -> ConfigurationError:
    """What ``get()`` raises for a fire-and-forget call: there is nothing to get."""
    return ConfigurationError(
        f"{task} [{call_id}] was sent fire-and-forget (ignore_result): it has no result"
    )
