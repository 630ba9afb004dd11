"""The codec: size limits (bombs included), compression, accept lists per side, bare decoding."""

from __future__ import annotations

import zlib

import pytest

from taskrpc import App, ConfigurationError, ContentDisallowed, PayloadTooLarge
from taskrpc.codec import IDENTITY, Codec
from taskrpc.serializers import default_registry


def codec(**options) -> Codec:
    return Codec(default_registry(), **{"max_size": 64 * 1024, **options})


def test_a_body_over_the_limit_is_refused_on_the_way_out():
    with pytest.raises(PayloadTooLarge):
        codec(max_size=100).encode({"args": ["x" * 200]}, "json")


def test_the_limit_applies_before_compression_so_both_sides_agree():
    with pytest.raises(PayloadTooLarge):
        codec(max_size=1000, compression="zlib").encode({"s": "x" * 5000}, "json")


def test_a_body_over_the_limit_is_refused_before_decoding():
    body = b'{"args": ["' + b"x" * 200 + b'"]}'
    with pytest.raises(PayloadTooLarge):
        codec(max_size=100).decode(body, "application/json")


@pytest.mark.parametrize("method", ["zlib", "gzip"])
def test_compression_kicks_in_at_the_threshold_and_round_trips(method):
    c = codec(compression=method, compression_threshold=100)
    small, large = c.encode({"s": "x"}, "json"), c.encode({"s": "x" * 1000}, "json")
    assert small.content_encoding == IDENTITY
    assert large.content_encoding == method and len(large.body) < 200
    assert c.decode(large.body, large.content_type, large.content_encoding) == {"s": "x" * 1000}


def test_a_receiver_without_compression_still_reads_compressed_bodies():
    sent = codec(compression="zlib", compression_threshold=0).encode([1, 2], "json")
    assert codec().decode(sent.body, sent.content_type, sent.content_encoding) == [1, 2]


@pytest.mark.parametrize("method", ["zlib", "gzip"])
def test_a_decompression_bomb_stops_at_the_limit(method, monkeypatch):
    import taskrpc.serializers.compression as compression

    produced: list[int] = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self, wbits):
            self._d = real(wbits)

        def decompress(self, data, max_length):
            out = self._d.decompress(data, max_length)
            produced.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._d, name)

    monkeypatch.setattr(compression.zlib, "decompressobj", Spy)
    bomb = compression.compress(b"\0" * (64 * 1024 * 1024), method)  # 64 MiB -> ~64 KB
    with pytest.raises(PayloadTooLarge):
        codec(max_size=1024 * 1024).decode(bomb, "application/json", method)
    assert sum(produced) <= 1024 * 1024 + 1  # never inflated past the limit


@pytest.mark.parametrize(
    ("body", "encoding", "error"),
    [
        (b"not zlib", "zlib", ValueError),
        (zlib.compress(b"[1]")[:-2], "zlib", ValueError),
        (zlib.compress(b"[1]") + b"junk", "zlib", ValueError),
        (b"[1]", "br", ContentDisallowed),
        (b"[1]", "latin-1", ContentDisallowed),
    ],
    ids=["corrupt", "truncated", "trailing", "brotli", "charset"],
)
def test_bad_encodings_are_refused(body, encoding, error):
    with pytest.raises(error):
        codec().decode(body, "application/json", encoding)


@pytest.mark.parametrize("encoding", [None, "", "binary", "utf-8", "identity"])
def test_identity_encodings_are_read_as_they_are(encoding):
    assert codec().decode(b"[1]", "application/json", encoding) == [1]


def test_an_unknown_compression_setting_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="compression"):
        codec(compression="lz4")


def test_each_side_has_its_own_accept_list():
    c = codec(accept_requests=("json", "msgpack"), accept_replies="json")
    body = c.encode([1], "msgpack").body
    assert c.decode(body, "application/x-msgpack", side="request") == [1]
    with pytest.raises(ContentDisallowed):
        c.decode(body, "application/x-msgpack", side="reply")


def test_accept_lists_take_names_or_content_types_and_skip_unknown_names(caplog):
    c = codec(accept_requests="json, application/x-msgpack, nosuch")
    assert c.accepted("request") == {"application/json", "application/x-msgpack"}
    assert "nosuch" in caplog.text


def test_listing_pickle_does_not_accept_it_until_enabled():
    import pickle

    c = codec(accept_requests=("json", "pickle"))
    body = pickle.dumps([1])
    with pytest.raises(ContentDisallowed):
        c.decode(body, "application/x-python-serialize")
    c.registry.enable("pickle")
    assert c.decode(body, "application/x-python-serialize") == [1]


def test_an_app_accepts_the_serializers_it_chose_on_both_sides():
    app = App("a", broker_url="memory://", serializer="msgpack")

    @app.task(reply_serializer="text")
    def shout(text: str) -> str:
        return text.upper()

    @app.task(serializer="text", bare=True, queue="plain")
    def plain(text: str) -> str:
        return text

    for side in ("request", "reply"):
        assert app.codec.accepted(side) == {
            "application/json",
            "application/x-msgpack",
            "text/plain",
        }
    app.configure(default_timeout=3)  # a new codec: the choices carry over
    assert "text/plain" in app.codec.accepted("reply")


def test_a_bare_task_s_format_is_not_accepted_elsewhere():
    app = App("a", broker_url="memory://")

    @app.task(serializer="text", bare=True, queue="plain")
    def plain(text: str) -> str:
        return text

    assert app.codec.accepted("request") == {"application/json"}
    assert app.bare_task("plain") is plain and app.bare_task(app.settings.default_queue) is None


def test_two_bare_tasks_cannot_share_a_queue():
    app = App("a", broker_url="memory://")
    app.task(name="one", queue="q", bare=True)(lambda x: x)
    with pytest.raises(ConfigurationError, match="bare"):
        app.task(name="two", queue="q", bare=True)(lambda x: x)


@pytest.mark.parametrize("content_type", [None, "", "text/plain"])
def test_decode_as_uses_the_receiver_s_choice(content_type):
    assert codec().decode_as(b"30", "text", content_type) == "30"


def test_decode_as_refuses_a_foreign_content_type():
    with pytest.raises(ContentDisallowed):
        codec().decode_as(b"30", "text", "application/x-python-serialize")


def test_bodies_handed_over_as_str_are_read_as_utf8():
    assert codec().decode("[1]", "application/json") == [1]  # type: ignore[arg-type]
    assert codec().decode_as("", "text", None) == ""  # type: ignore[arg-type]


def test_the_client_refuses_a_request_over_the_limit_before_publishing():
    app = App("a", broker_url="amqp://nowhere.invalid//", max_message_size=1000)

    @app.task
    def size(blob: str) -> int:
        return len(blob)

    with app, pytest.raises(PayloadTooLarge):
        size.delay("x" * 2000)
