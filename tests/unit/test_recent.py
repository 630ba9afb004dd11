"""The worker's recent replies: answering a resend, refusing a reused id, reply addresses."""

from __future__ import annotations

import pytest

from taskrpc.exceptions import BadRequest
from taskrpc.messages import Outcome
from taskrpc.transport import Delivery
from taskrpc.worker.recent import RecentReplies, fingerprint, reply_key

OK = Outcome(ok=True, body=b'{"ok":true,"result":55,"error":null}', content_type="application/json")


def delivery(body: bytes = b'{"args":[10]}', task: str = "fib", **changes) -> Delivery:
    fields = {
        "delivery_tag": 1,
        "body": body,
        "properties": {},
        "headers": {"taskrpc-task": task},
        "content_type": "application/json",
        "content_encoding": "binary",
        "exchange": "taskrpc",
        "routing_key": "q",
        "redelivered": False,
        "consumer_tag": "c",
    }
    return Delivery(**{**fields, **changes})


def test_a_resend_of_the_same_request_gets_the_same_reply():
    recent = RecentReplies()
    recent.put(("q", "id1"), OK, fingerprint(delivery()))
    assert recent.get(("q", "id1"), fingerprint(delivery())) is OK
    assert recent.get(("q", "id2"), fingerprint(delivery())) is None
    assert recent.get(None) is None


@pytest.mark.parametrize(
    "other",
    [
        delivery(body=b'{"args":[11]}'),
        delivery(task="other"),
        delivery(content_type="application/x-msgpack"),
        delivery(content_encoding="zlib"),
    ],
)
def test_a_different_request_reusing_the_id_is_refused(other):
    recent = RecentReplies()
    recent.put(("q", "id1"), OK, fingerprint(delivery()))
    with pytest.raises(BadRequest) as caught:
        recent.get(("q", "id1"), fingerprint(other))
    assert caught.value.type_name == "ReusedRequestId"


def test_the_reply_address_falls_back_to_the_message_id():
    assert reply_key({"reply_to": "q", "correlation_id": "c", "message_id": "m"}) == ("q", "c")
    assert reply_key({"reply_to": "q", "message_id": "m"}) == ("q", "m")
    assert reply_key({"reply_to": "q"}) is None
    assert reply_key({"correlation_id": "c"}) is None


def test_large_replies_and_old_ones_are_forgotten():
    recent = RecentReplies(capacity=2, max_body=40)
    big = Outcome(ok=True, body=b"x" * 41, content_type="application/json")
    recent.put(("q", "big"), big)
    assert recent.get(("q", "big")) is None
    for name in ("a", "b", "c"):
        recent.put(("q", name), OK)
    assert recent.get(("q", "a")) is None
    assert recent.get(("q", "c")) is OK


def test_an_empty_body_from_py_amqp_is_a_str_and_still_fingerprints():
    assert fingerprint(delivery(body="")) == fingerprint(delivery(body=b""))  # type: ignore[arg-type]
