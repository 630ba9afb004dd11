"""What a caller gets from a call: its reply checked, then read into a result or an error.

A reply is checked (:func:`check_reply`: signature, decoding) before it may settle its
call; the caller reads the checked reply (:func:`read_reply`) into the task's result or
the remote error. A fire-and-forget call has no reply: the caller gets its id once the
broker confirms it (:func:`sent`), and asking it for a result is an error
(:func:`no_result`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..exceptions import (
    BadSignature,
    ConfigurationError,
    ContentDisallowed,
    DeadlineExceeded,
    InvalidResult,
    PayloadTooLarge,
    TimeoutError,
)
from ..messages import ReplyBody
from ..security.signing import Envelope
from .replies import CheckedReply, PendingCall, RawReply, RejectedReply

if TYPE_CHECKING:
    from ..app import App

#: Turns the JSON-ready result into what the caller gets back (e.g. a pydantic model).
ResultLoader = Callable[[Any], Any]


#: What a reply's check may raise about the reply itself (never about our own code).
_UNREADABLE = (BadSignature, ContentDisallowed, PayloadTooLarge, ValueError, RecursionError)


def check_reply(app: App, reply: RawReply) -> CheckedReply:
    """Verify and decode a reply before it may settle its call.

    A signing app verifies the reply's signature (over its body, headers, correlation id
    and routing key) before decoding it.

    Raises:
        RejectedReply: The reply does not verify or does not decode into a reply
            envelope; its call keeps waiting for the genuine one.
    """
    try:
        envelope = Envelope(
            "reply",
            reply.content_type,
            reply.content_encoding,
            reply.correlation_id,
            None,
            reply.routing_key,
            reply.headers or {},
        )
        app.codec.verify(reply.body, envelope)
        data = app.codec.decode(
            reply.body, reply.content_type, reply.content_encoding, side="reply"
        )
        decoded = ReplyBody.model_validate(data)
    except _UNREADABLE as exc:  # pydantic's ValidationError is a ValueError
        named = isinstance(exc, (BadSignature, ContentDisallowed, PayloadTooLarge))
        kind = type(exc).__name__ if named else "BadReply"
        raise RejectedReply(f"{kind}: {exc}") from None
    if not decoded.ok and decoded.error is None:
        raise RejectedReply("BadReply: an error reply without error details")
    return CheckedReply(*reply, decoded)


def read_reply(app: App, reply: CheckedReply, load_result: ResultLoader | None) -> Any:
    """Return a checked reply's (re-typed) result or raise the remote error.

    Raises:
        RemoteError: The task failed remotely (a typed subclass where the code is known,
            also an instance of the remote type if the app allowed it).
        TimeoutError: The worker refused the request because its deadline had passed
            (``started`` is ``False``).
        InvalidResult: The result does not match the task's return type here.
    """
    decoded: ReplyBody = reply.decoded
    if not decoded.ok:
        assert decoded.error is not None  # check_reply refuses error replies without it
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
