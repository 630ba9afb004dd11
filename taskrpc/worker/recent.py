"""The worker's memory of the replies it sent: answer a request again without rerunning it.

A request comes back after a reconnection when its ack was lost with the old connection,
and a client may resend a call (same id) when it cannot know whether it arrived. If the
reply is still remembered, the worker sends it again instead of running the task twice.

Each reply is kept with its request's :func:`fingerprint`. A request that reuses a
remembered id but is a different request (another task or body) is refused with
``bad_request`` (``ReusedRequestId``) rather than answered with another call's result.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Mapping
from typing import Any, Protocol

from ..exceptions import BadRequest
from ..messages import HEADER_TASK, Outcome

#: A reply's address: request ids are only unique per reply queue.
ReplyKey = tuple[str, str]


class Request(Protocol):
    """What a fingerprint is made of (the worker's ``Delivery`` has it)."""

    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> Mapping[str, Any]: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def content_encoding(self) -> str | None: ...


class RecentReplies:
    """The last ``capacity`` replies sent, each with its request's fingerprint.

    Parameters:
        capacity: Replies kept; the oldest is forgotten first.
        max_body: Larger replies are not kept.
    """

    def __init__(self, capacity: int = 256, max_body: int = 256 * 1024) -> None:
        self._entries: collections.OrderedDict[ReplyKey, tuple[Outcome, bytes]] = (
            collections.OrderedDict()
        )
        self._capacity = capacity
        self._max_body = max_body

    def put(self, key: ReplyKey, outcome: Outcome, request: bytes = b"") -> None:
        """Remember ``outcome``, the reply to the request whose fingerprint is ``request``,
        unless it is too large."""
        if len(outcome.body) > self._max_body:
            return
        self._entries[key] = (outcome, request)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def knows(self, key: ReplyKey | None) -> bool:
        """Whether a reply for ``key`` is remembered (cheap: no fingerprint needed)."""
        return key is not None and key in self._entries

    def get(self, key: ReplyKey | None, request: bytes = b"") -> Outcome | None:
        """The reply sent for ``key`` to the request fingerprinted ``request``, if remembered.

        Raises:
            BadRequest: ``key`` answered a request with another fingerprint
                (``type_name`` ``ReusedRequestId``).
        """
        entry = None if key is None else self._entries.get(key)
        if entry is None:
            return None
        outcome, answered = entry
        if answered != request:
            assert key is not None
            raise BadRequest(
                f"request id {key[1][:64]!r} was used by a different request that this "
                "worker answered recently; every call needs a fresh id",
                type_name="ReusedRequestId",
            )
        return outcome


def reply_key(properties: Mapping[str, Any]) -> ReplyKey | None:
    """Where a request's reply goes: its ``reply_to`` and request id (``correlation_id``,
    else ``message_id``); ``None`` if it has no reply address."""
    reply_to = properties.get("reply_to")
    request_id = properties.get("correlation_id") or properties.get("message_id")
    if not reply_to or not request_id:
        return None
    return (str(reply_to), str(request_id))


def fingerprint(request: Request) -> bytes:
    """A SHA-256 digest of what makes a request that request: its task, content type,
    content encoding and body. Resending the same call gives the same fingerprint."""
    task = (request.headers or {}).get(HEADER_TASK)
    head = f"{task or ''}\0{request.content_type or ''}\0{request.content_encoding or ''}\0"
    digest = hashlib.sha256(head.encode("utf-8", "surrogateescape"))
    body = request.body
    # py-amqp gives a message with no body frame the body "" (a str), and may decode a
    # body to text by its content encoding: neither may crash the worker.
    digest.update(body if isinstance(body, bytes) else str(body).encode("utf-8", "surrogateescape"))
    return digest.digest()
