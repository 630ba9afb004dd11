"""Writes held in a batch go out together, in order, and never wait long."""

from __future__ import annotations

import pytest

from taskrpc.transport import batching
from taskrpc.transport.batching import WriteBatch


def test_outside_a_batch_every_write_goes_out_at_once():
    sent: list[bytes] = []
    writes = WriteBatch(sent.append)
    writes.write(b"a")
    writes.write(b"b")
    assert sent == [b"a", b"b"] and not writes.holding


def test_a_batch_sends_its_writes_as_one_when_it_ends_in_order():
    sent: list[bytes] = []
    writes = WriteBatch(sent.append)
    with writes.batch():
        for part in (b"reply-1", b"reply-2", b"ack"):
            writes.write(part)
        with writes.batch():  # nested: part of the outer one
            writes.write(b"reply-3")
        assert sent == [] and writes.holding
    assert sent == [b"reply-1reply-2ackreply-3"]


def test_flush_sends_what_is_held_and_keeps_the_batch_open():
    sent: list[bytes] = []
    writes = WriteBatch(sent.append)
    with writes.batch():
        writes.write(b"a")
        writes.flush()
        writes.flush()  # nothing held: nothing sent
        writes.write(b"b")
    assert sent == [b"a", b"b"]


def test_a_batch_that_raises_still_sends_what_it_held():
    sent: list[bytes] = []
    writes = WriteBatch(sent.append)
    with pytest.raises(RuntimeError), writes.batch():
        writes.write(b"complete frames")
        raise RuntimeError("later")
    assert sent == [b"complete frames"]
    writes.write(b"after")  # the batch is closed: straight out
    assert sent[-1] == b"after"


def test_held_writes_go_out_past_the_size_count_or_age_limits(monkeypatch):
    sent: list[bytes] = []
    writes = WriteBatch(sent.append)
    with writes.batch():
        writes.write(b"x" * batching.MAX_HELD_BYTES)
        assert sent == [b"x" * batching.MAX_HELD_BYTES]
        for _ in range(batching.MAX_HELD_WRITES):
            writes.write(b"y")
        assert sent[-1] == b"y" * batching.MAX_HELD_WRITES
        now = [100.0]
        monkeypatch.setattr(batching.time, "monotonic", lambda: now[0])
        writes.write(b"old")
        assert sent[-1] != b"old"
        now[0] += 2 * batching.MAX_HOLD
        writes.write(b"new")  # the oldest has waited long enough: both go
        assert sent[-1] == b"oldnew"
