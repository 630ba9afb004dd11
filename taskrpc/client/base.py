"""Building requests: a call encoded into what a client (or the beat) publishes.

Reading replies is :mod:`taskrpc.client.outcomes`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING, Any

import pydantic_core

from .. import delays
from ..exceptions import ConfigurationError, PayloadTooLarge
from ..messages import (
    HEADER_DEADLINE,
    HEADER_PROTOCOL,
    HEADER_SENT_AT,
    HEADER_TASK,
    PROTOCOL_VERSION,
)
from ..security.signing import Envelope

if TYPE_CHECKING:
    from ..app import App
    from ..codec import Codec


@dataclasses.dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """An encoded request, ready to publish.

    It is not changed once built. Each publish takes its properties from
    :meth:`amqp_properties`: if the app signs, they carry a fresh signature over the body
    and the properties as published, ``reply_to`` and ``expiration`` included, so a
    resent request is signed anew.
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
    #: Whether each publish carries an ``expiration`` (the time left until the deadline):
    #: not for delayed requests, nor fire-and-forget ones sent without a timeout.
    expires: bool = True

    def route(self, default_exchange: str, now: float | None = None) -> tuple[str, str]:
        """The exchange and routing key to publish to at ``now`` (``time.monotonic()``)."""
        if self.due is not None:
            now = time.monotonic() if now is None else now
            milliseconds = delays.delay_milliseconds(self.due - now)
            if milliseconds:
                key = delays.routing_key(milliseconds, self.queue)
                return delays.entry_exchange(milliseconds), key
        return default_exchange, self.queue

    @property
    def headers(self) -> dict[str, Any]:
        """The headers as :meth:`amqp_properties` would publish them now (signed afresh)."""
        reply_to = self.properties.get("reply_to") or ""
        headers: dict[str, Any] = self.amqp_properties(reply_to, None)["application_headers"]
        return headers

    def amqp_properties(self, reply_to: str, expiration_ms: int | None) -> dict[str, Any]:
        """The AMQP properties of one publish of this request, headers signed now.

        The request itself is never changed: ``reply_to`` (the current connection's reply
        queue) and ``expiration`` (the milliseconds left at this publish; ``None`` for a
        delayed request) go only into the returned dict, and the signature covers them
        as published.
        """
        properties = dict(self.properties)
        if expiration_ms is not None:
            properties["expiration"] = str(expiration_ms)
        if reply_to:
            properties["reply_to"] = reply_to
        headers = self.base_headers
        if self.codec is not None and self.codec.signs:
            envelope = Envelope(
                kind="request",
                content_type=self.content_type,
                content_encoding=self.content_encoding,
                correlation_id=properties.get("correlation_id"),
                reply_to=properties.get("reply_to"),
                routing_key=self.queue,
                headers=headers,
            )
            headers = {**headers, **self.codec.sign(self.body, envelope)}
        properties["content_type"] = self.content_type
        properties["content_encoding"] = self.content_encoding
        properties["application_headers"] = headers
        return properties


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
        AMQP ``expiration`` (so the broker drops a request nobody took in time), which
        each publish computes from the time left then.

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
            expires=expires and due is None,
        )

    def _serializer_of(self, task: str) -> str:
        known = self.app.tasks.get(task)
        if known is not None and known.serializer and not known.bare:
            return known.serializer
        return self._serializer
