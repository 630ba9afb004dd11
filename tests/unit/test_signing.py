"""HMAC signing: what it covers, key rotation, the replay window."""

from __future__ import annotations

import dataclasses

import pytest

from taskrpc import ConfigurationError
from taskrpc.exceptions import BadSignature
from taskrpc.security.signing import (
    HEADER_KEY_ID,
    HEADER_NONCE,
    HEADER_SIGNED_AT,
    Envelope,
    Signer,
    SigningKey,
)

NEW = SigningKey("k2", b"n" * 32)
OLD = SigningKey("k1", b"o" * 32)
ENVELOPE = Envelope(
    "request", "application/json", "binary", "id-1", "reply.q", "tasks", {"taskrpc-task": "add"}
)
BODY = b'{"args": [1, 2]}'


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signed(signer: Signer, envelope: Envelope = ENVELOPE, body: bytes = BODY) -> Envelope:
    return dataclasses.replace(
        envelope, headers={**envelope.headers, **signer.sign(body, envelope)}
    )


def test_a_signed_message_verifies():
    signer = Signer([NEW])
    signer.verify(BODY, signed(signer))


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "reply"},
        {"content_type": "application/x-msgpack"},
        {"content_encoding": "zlib"},
        {"correlation_id": "id-2"},
        {"reply_to": "evil.q"},
        {"routing_key": "other"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_every_covered_property_is_bound_to_the_signature(change):
    signer = Signer([NEW])
    with pytest.raises(BadSignature, match="does not match"):
        signer.verify(BODY, dataclasses.replace(signed(signer), **change))


@pytest.mark.parametrize(
    "headers",
    [{"taskrpc-task": "rm"}, {"taskrpc-deadline": 9e9}, {"taskrpc-new": 1}, {HEADER_NONCE: "x"}],
    ids=["task", "deadline", "added", "nonce"],
)
def test_taskrpc_headers_are_covered(headers):
    signer = Signer([NEW])
    envelope = signed(signer)
    with pytest.raises(BadSignature):
        signer.verify(BODY, dataclasses.replace(envelope, headers={**envelope.headers, **headers}))


def test_other_headers_are_not_covered():
    signer = Signer([NEW])
    envelope = signed(signer)
    signer.verify(BODY, dataclasses.replace(envelope, headers={**envelope.headers, "x-trace": 1}))


def test_the_body_is_covered_byte_for_byte():
    signer = Signer([NEW])
    with pytest.raises(BadSignature):
        signer.verify(BODY + b" ", signed(signer))


def test_rotation_signs_with_the_first_key_and_verifies_with_any():
    rotating, old_only = Signer([NEW, OLD]), Signer([OLD])
    assert signed(rotating).headers[HEADER_KEY_ID] == "k2"
    rotating.verify(BODY, signed(old_only))  # senders not yet rotated still get through
    with pytest.raises(BadSignature, match="unknown key"):
        old_only.verify(BODY, signed(rotating))


@pytest.mark.parametrize("offset", [-301, 301], ids=["stale", "future"])
def test_signatures_outside_the_window_are_refused(offset):
    clock = Clock()
    sender, receiver = Signer([NEW], clock=Clock(clock.now + offset)), Signer([NEW], clock=clock)
    with pytest.raises(BadSignature, match="window"):
        receiver.verify(BODY, signed(sender))


def test_a_request_seen_twice_is_a_replay_unless_redelivered():
    clock = Clock()
    signer = Signer([NEW], window=60, clock=clock)
    envelope = signed(signer)
    signer.verify(BODY, envelope)
    signer.verify(BODY, envelope, redelivered=True)  # a lost ack: the broker says so
    with pytest.raises(BadSignature, match="replayed"):
        signer.verify(BODY, envelope)
    clock.now += 61  # past the window: refused for its age now, and forgotten
    with pytest.raises(BadSignature, match="window"):
        signer.verify(BODY, envelope)
    assert len(signer.replays) == 1


def test_replies_are_not_checked_for_replays():
    signer = Signer([NEW])
    reply = signed(signer, dataclasses.replace(ENVELOPE, kind="reply"))
    signer.verify(BODY, reply)
    signer.verify(BODY, reply)


def test_the_replay_memory_holds_the_whole_window_whatever_else_arrives():
    clock = Clock()
    signer = Signer([NEW], window=60, clock=clock)
    first = signed(signer)
    signer.verify(BODY, first)
    for _ in range(5000):  # a flood of other valid requests does not push it out
        clock.now += 0.01
        signer.verify(BODY, signed(signer))
    with pytest.raises(BadSignature, match="replayed"):
        signer.verify(BODY, first)
    clock.now += 61  # the window has passed for the first: forgotten, refused for its age
    signer.verify(BODY, signed(signer))
    assert len(signer.replays) < 5000


def test_a_full_replay_memory_refuses_older_requests_rather_than_forget_them():
    clock = Clock()
    signer = Signer([NEW], window=60, clock=clock, remember=10)
    old = signed(signer)
    signer.verify(BODY, old)
    for _ in range(20):  # five a second: the memory keeps the last two seconds
        clock.now += 0.2
        signer.verify(BODY, signed(signer))
    assert len(signer.replays) <= 10
    with pytest.raises(BadSignature, match="too long ago"):
        signer.verify(BODY, old, redelivered=True)


def test_a_redelivery_passes_until_the_request_is_answered():
    signer = Signer([NEW])
    envelope = signed(signer)
    signer.verify(BODY, envelope)
    signer.verify(BODY, envelope, redelivered=True)  # a lost ack: it may run again
    assert not signer.answered(envelope.headers)
    signer.mark_answered(envelope.headers)
    assert signer.answered(envelope.headers)


@pytest.mark.parametrize(
    "headers", [{}, {HEADER_KEY_ID: "k2"}, {HEADER_SIGNED_AT: 1.0}], ids=["none", "id", "time"]
)
def test_unsigned_messages_are_refused(headers):
    with pytest.raises(BadSignature, match="unsigned"):
        Signer([NEW]).verify(BODY, dataclasses.replace(ENVELOPE, headers=headers))


def test_keys_are_parsed_from_settings_entries():
    signer = Signer.from_entries("k2:" + "n" * 32 + ", k1:" + "o:o" * 10, window=5)
    assert signer is not None and repr(signer) == "<Signer keys=['k2', 'k1'] window=5>"
    assert Signer.from_entries((), window=5) is None


@pytest.mark.parametrize("window", [0, -1])
def test_the_window_must_be_positive(window):
    with pytest.raises(ConfigurationError):
        Signer([NEW], window=window)
