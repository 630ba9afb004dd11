"""Publishing the consume loop's replies.

Replies are published in the loop's thread, inside its ``transport.batch()``: a pass's
replies go out in one write. A reply that cannot be encoded (e.g. a ``reply_to`` holding
a lone surrogate) raises one of :data:`UNENCODABLE`; connection errors are not among them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..messages import Outcome, reply_headers
from ..security.signing import HEADER_KEY_ID, Envelope
from ..transport import Delivery

if TYPE_CHECKING:
    from ..app import App

#: What encoding a reply frame raises when it cannot be sent at all.
UNENCODABLE = (UnicodeError, ValueError, TypeError, OverflowError)

#: ``Transport.publish``: body, properties, exchange, routing key.
Publish = Callable[[bytes, dict[str, Any], str, str], Any]


def publish_reply(app: App, publish: Publish, message: Delivery, outcome: Outcome) -> None:
    """Publish ``outcome`` to the ``reply_to`` of ``message``, if it has one; signed when
    the request was verified, with the key the request was signed with."""
    properties = message.properties
    reply_to = properties.get("reply_to")
    if not reply_to:
        return
    reply_properties: dict[str, Any] = {"delivery_mode": 1}
    correlation_id = properties.get("correlation_id") or properties.get("message_id")
    if correlation_id is not None:
        reply_properties["correlation_id"] = correlation_id
    headers = reply_headers(outcome.ok)
    envelope = Envelope(
        "reply",
        outcome.content_type,
        outcome.content_encoding,
        correlation_id,
        None,
        reply_to,
        headers,
    )
    request_key = (message.headers or {}).get(HEADER_KEY_ID)
    key_id = request_key if isinstance(request_key, str) else None
    if outcome.verified:  # an unverified request is never answered with a signature
        headers.update(app.codec.sign(outcome.body, envelope, key_id=key_id))
    reply_properties["content_type"] = outcome.content_type
    reply_properties["content_encoding"] = outcome.content_encoding
    reply_properties["application_headers"] = headers
    publish(outcome.body, reply_properties, "", reply_to)
