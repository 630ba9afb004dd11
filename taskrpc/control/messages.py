"""The control plane's messages: JSON bodies, signed like requests when the app signs.

A command is published to the fanout exchange :data:`EXCHANGE` with a ``reply_to`` (the
asker's own queue) and a ``correlation_id``; every worker that hears it answers there,
with the same correlation id. See the monitoring guide and ``docs/protocol.rst``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..exceptions import BadSignature
from ..messages import HEADER_PROTOCOL, PROTOCOL_VERSION
from ..security.signing import Envelope

if TYPE_CHECKING:
    from ..codec import Codec

#: The fanout exchange workers bind their control queues to.
EXCHANGE = "taskrpc.control"
#: Commands a worker answers.
COMMANDS = ("ping", "stats", "active", "registered", "queues", "revoke")
#: Content type of control messages (always JSON, whatever the app's serializer).
CONTENT_TYPE = "application/json"
#: Header naming the command (on commands) or ``"reply"`` (on answers).
HEADER_CONTROL = "taskrpc-control"
#: Largest control message read (bytes).
MAX_SIZE = 1024 * 1024


def encode(
    codec: Codec,
    data: dict[str, Any],
    *,
    kind: str,
    correlation_id: str,
    reply_to: str | None,
    routing_key: str,
) -> tuple[bytes, dict[str, Any]]:
    """The body and headers (signed if ``codec`` signs) of one control message.

    ``kind`` is ``"control"`` for commands and ``"control-reply"`` for answers.
    """
    body = json.dumps(data, default=str, separators=(",", ":")).encode()
    headers: dict[str, Any] = {
        HEADER_PROTOCOL: PROTOCOL_VERSION,
        HEADER_CONTROL: data.get("command") if kind == "control" else "reply",
    }
    envelope = Envelope(kind, CONTENT_TYPE, "utf-8", correlation_id, reply_to, routing_key, headers)
    headers.update(codec.sign(body, envelope))
    return body, headers


def decode(
    codec: Codec,
    body: bytes,
    headers: dict[str, Any],
    *,
    kind: str,
    correlation_id: str | None,
    reply_to: str | None,
    routing_key: str,
) -> dict[str, Any]:
    """Verify (when the app signs) and decode one control message.

    Raises:
        ValueError: Too large, not a JSON object, or a bad signature.
    """
    if len(body) > MAX_SIZE:
        raise ValueError(f"control message of {len(body)} bytes is too large")
    envelope = Envelope(kind, CONTENT_TYPE, "utf-8", correlation_id, reply_to, routing_key, headers)
    try:
        codec.verify(body, envelope)
    except BadSignature as exc:
        raise ValueError(str(exc)) from None
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("control message is not a JSON object")
    return data
