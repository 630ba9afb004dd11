"""Periodic requests verify when the app signs: the tick header is signed with the rest."""

from __future__ import annotations

from typing import Any

from taskrpc import App
from taskrpc.beat.service import HEADER_TICK, Beat
from taskrpc.security.signing import Envelope


class Channel:
    """Records what is published."""

    def __init__(self) -> None:
        self.published: list[tuple[Any, str, str]] = []

    def basic_publish(self, message: Any, exchange: str, routing_key: str) -> None:
        self.published.append((message, exchange, routing_key))


def test_a_periodic_request_carries_a_signed_tick():
    app = App("beat-signing", broker_url="memory://", signing_keys=("k1:" + "s" * 32,))

    @app.periodic(every=60)
    @app.task(name="tidy")
    def tidy() -> None:
        return None

    channel = Channel()
    beat = Beat(app)
    entry = beat.entries[0]
    beat._publish_request(channel, entry, 1795769880)
    ((message, _, routing_key),) = channel.published
    headers = message.properties["application_headers"]
    assert headers[HEADER_TICK] == 1795769880
    envelope = Envelope(
        "request",
        message.properties["content_type"],
        message.properties["content_encoding"],
        message.properties["correlation_id"],
        message.properties.get("reply_to"),
        routing_key,
        headers,
    )
    app.codec.verify(message.body, envelope)  # raises BadSignature if the tick were not signed
