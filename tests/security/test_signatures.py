"""Signed messages and compression against a real worker that requires signatures.

The worker holds two keys (``k2`` current, ``k1`` being retired) and a 30 s replay window.
Forged, tampered, stale and replayed requests are refused before anything is decoded,
with a typed error; nothing runs; the worker keeps serving.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kombu import Connection, Consumer, Queue

from taskrpc import App, BadRequest, PayloadTooLarge, RemoteError, TimeoutError
from taskrpc.messages import HEADER_DEADLINE, HEADER_PROTOCOL, HEADER_TASK
from taskrpc.security.signing import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_SIGNED_AT,
    Envelope,
    Signer,
    SigningKey,
)
from taskrpc.testing.broker import queue_state

from .conftest import KEY_NEW, KEY_OLD
from .test_bad_input import CreatesFile, touch_body

pytestmark = pytest.mark.broker

WORKER_ENV = {
    "TASKRPC_SIGNING_KEYS": f"{KEY_NEW},{KEY_OLD}",
    "TASKRPC_SIGNATURE_WINDOW": "30",
    "TASKRPC_COMPRESSION": "zlib",
    "TASKRPC_COMPRESSION_THRESHOLD": "1024",
}
CLIENT_OPTIONS = {"signing_keys": (KEY_NEW,), "compression": "zlib", "compression_threshold": 1024}

TOUCH = {HEADER_PROTOCOL: 1, HEADER_TASK: "touch"}


def signer(entry: str = KEY_NEW, skew: float = 0.0) -> Signer:
    return Signer([SigningKey.parse(entry)], window=30, clock=lambda: time.time() + skew)


@dataclasses.dataclass(frozen=True)
class Forgery:
    """How to sign a request, and what to change after signing it."""

    signer: Callable[[], Signer | None] = signer
    #: Changes to the envelope that is signed (the request as the forger claims it).
    signed_as: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Changes to the published message after signing.
    body_after: bytes | None = None
    headers_after: dict[str, Any] = dataclasses.field(default_factory=dict)
    publish: dict[str, Any] = dataclasses.field(default_factory=dict)


FORGERIES: dict[str, Forgery] = {
    "unsigned": Forgery(signer=lambda: None),
    "random-signature": Forgery(headers_after={HEADER_SIGNATURE: "ab" * 32}),
    "signature-not-a-string": Forgery(headers_after={HEADER_SIGNATURE: 12345}),
    "signature-of-another-message": Forgery(signed_as={"correlation_id": "someone-else"}),
    "unknown-key-id": Forgery(signer=lambda: signer("k9:" + "n" * 32)),
    "wrong-secret-for-a-known-key": Forgery(signer=lambda: signer("k2:" + "x" * 32)),
    "body-tampered": Forgery(body_after=b'{"args": ["/etc/passwd"]}'),
    "body-appended": Forgery(body_after=b'{"args": []}    '),
    "task-swapped": Forgery(signed_as={"headers": {**TOUCH, HEADER_TASK: "add"}}),
    "deadline-extended": Forgery(headers_after={HEADER_DEADLINE: time.time() + 10**6}),
    "header-added": Forgery(headers_after={"taskrpc-priority": 9}),
    "reply-to-redirected": Forgery(signed_as={"reply_to": "attacker.queue"}),
    "routed-elsewhere": Forgery(signed_as={"routing_key": "another.queue"}),
    "content-type-swapped": Forgery(
        signed_as={"content_type": "text/plain"}, publish={"content_type": "application/json"}
    ),
    "encoding-swapped": Forgery(signed_as={"content_encoding": "zlib"}),
    "replay-from-the-past": Forgery(signer=lambda: signer(skew=-3600)),
    "signed-in-the-future": Forgery(signer=lambda: signer(skew=+3600)),
    "signed-at-a-string": Forgery(headers_after={HEADER_SIGNED_AT: "now"}),
    "signed-at-missing": Forgery(headers_after={HEADER_SIGNED_AT: None}),
}


def publish_signed(raw, body: bytes, forgery: Forgery, reply_to: str | None = None) -> Any:
    """Sign ``body`` as ``forgery`` says and publish it raw; return the reply handle (of
    the client's reply queue, unless ``reply_to`` names another)."""
    call_id, reply_to = uuid.uuid4().hex, reply_to or raw.reply_to()
    options = {"content_type": "application/json", "content_encoding": "binary", **forgery.publish}
    envelope = Envelope(
        kind="request",
        content_type=options["content_type"],
        content_encoding=options["content_encoding"],
        correlation_id=call_id,
        reply_to=reply_to,
        routing_key=raw.app.settings.default_queue,
        headers=dict(TOUCH),
    )
    envelope = dataclasses.replace(envelope, **forgery.signed_as)
    made = forgery.signer()
    headers = {**TOUCH, **(made.sign(body, envelope) if made else {}), **forgery.headers_after}
    headers = {name: value for name, value in headers.items() if value is not None}
    from taskrpc.client.replies import PendingCall
    from taskrpc.client.result import AsyncResult

    call = PendingCall(call_id, "raw", time.monotonic() + 15)
    raw.app.client._router.add(call)
    raw.publish(
        forgery.body_after if forgery.body_after is not None else body,
        headers=headers,
        properties={"correlation_id": call_id, "reply_to": reply_to},
        **options,
    )
    result = AsyncResult(raw.app, call, None)
    result._keep_alive = call
    return result


@pytest.mark.usefixtures("still_serving")
@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_and_tampered_requests_are_refused_before_decoding_and_never_signed(
    raw, tmp_path, forgery
):
    marker = tmp_path / "marker"
    channel = raw.connection.channel()
    try:
        queue = Queue(f"taskrpc.test.forged-reply.{uuid.uuid4().hex}", exclusive=True)(channel)
        queue.declare()
        publish_signed(raw, touch_body(str(marker)), forgery, reply_to=queue.name)
        reply = wait_for_message(queue)
    finally:
        channel.close()
    error = json.loads(reply.body)["error"]
    assert (error["code"], error["type"]) == ("bad_request", "BadSignature"), error
    # Unsigned: a keyless forger who names a victim's reply queue cannot get a signed
    # message to it; the victim's client drops this one as unverified.
    assert HEADER_SIGNATURE not in (reply.headers or {})
    assert not marker.exists()


def wait_for_message(queue: Queue, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = queue.get(no_ack=True)
        if message is not None:
            return message
        time.sleep(0.02)
    raise AssertionError(f"nothing arrived on {queue.name}")


@pytest.mark.usefixtures("still_serving")
def test_a_replayed_request_runs_once(raw, served, tmp_path):
    marker = tmp_path / "marker"
    body = touch_body(str(marker))
    envelope = Envelope(
        "request", "application/json", "binary", "replayed-1", "", served.queue, dict(TOUCH)
    )
    headers = {**TOUCH, **signer().sign(body, envelope)}
    for _ in range(3):  # the original and two replays, within the window
        raw.publish(body, headers=headers, properties={"correlation_id": "replayed-1"})
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    # The loop admits requests in order: once a later call is answered, both replays
    # were refused at their signature check (their log lines may be rate-limited).
    assert raw.app.send_task("add", [1, 2]).get(timeout=10) == 3
    assert marker.read_text() == "ran\n"


@pytest.mark.usefixtures("still_serving")
def test_a_correctly_signed_pickle_is_still_never_unpickled(raw, tmp_path):
    marker = tmp_path / "marker"
    forgery = Forgery(publish={"content_type": "application/x-python-serialize"})
    result = publish_signed(raw, pickle.dumps(CreatesFile(str(marker))), forgery)
    with pytest.raises(BadRequest) as info:
        result.get(timeout=15)
    assert info.value.type_name == "ContentDisallowed"
    assert not marker.exists()


@pytest.mark.usefixtures("still_serving")
def test_keys_rotate_old_and_new_both_verify(served, broker_url):
    for keys in [(KEY_OLD,), (KEY_NEW, KEY_OLD)]:
        with App(
            "rotating", broker_url=broker_url, default_queue=served.queue, signing_keys=keys
        ) as app:
            assert app.send_task("add", [1, 1]).get(timeout=10) == 2


@pytest.mark.usefixtures("still_serving")
def test_a_client_without_keys_gets_bad_signature(served, broker_url):
    with App("outsider", broker_url=broker_url, default_queue=served.queue) as app:
        with pytest.raises(BadRequest) as info:  # the refusal, unsigned
            app.send_task("add", [1, 1]).get(timeout=10)
    assert info.value.type_name == "BadSignature"


@pytest.mark.usefixtures("still_serving")
def test_a_client_with_a_wrong_secret_cannot_trust_the_refusal(served, broker_url):
    keys = ("k2:" + "z" * 32,)
    with App(
        "outsider", broker_url=broker_url, default_queue=served.queue, signing_keys=keys
    ) as app:
        # The worker refuses the request unsigned; a client that requires signatures
        # cannot authenticate that refusal: it reports it as an unverified reply, or
        # drops it and times out. Either way the call does not succeed.
        with pytest.raises((RemoteError, TimeoutError)) as info:
            app.send_task("add", [1, 1]).get(timeout=3)
    if isinstance(info.value, RemoteError):
        assert info.value.type_name == "BadSignature"


@pytest.mark.usefixtures("still_serving")
def test_a_client_with_a_wrong_secret_drops_the_refusal_it_cannot_verify(served, broker_url):
    from taskrpc import TimeoutError

    keys = ("k2:" + "z" * 32,)
    with App(
        "outsider", broker_url=broker_url, default_queue=served.queue, signing_keys=keys
    ) as app:
        # The worker refuses the request; a client holding a wrong secret cannot
        # authenticate the refusal, so it drops it like any reply that does not verify,
        # and the call ends at its deadline, naming the reply it dropped.
        with pytest.raises(TimeoutError, match="a reply was dropped: BadSignature"):
            app.send_task("add", [1, 1], timeout=2).get()
        assert app.client.rejected_replies == 1


def test_replies_are_signed_over_their_body_and_routing(raw, served, broker_url):
    queue_name = f"taskrpc.test.reply.{uuid.uuid4().hex[:8]}"
    body = json.dumps({"args": [20, 22]}).encode()
    envelope = Envelope(
        "request",
        "application/json",
        "binary",
        "r-1",
        queue_name,
        served.queue,
        {HEADER_PROTOCOL: 1, HEADER_TASK: "add"},
    )
    headers = {HEADER_PROTOCOL: 1, HEADER_TASK: "add", **signer().sign(body, envelope)}
    received: list[Any] = []
    with Connection(broker_url) as connection:
        channel = connection.channel()
        queue = Queue(queue_name, exclusive=True, auto_delete=True)(channel)
        queue.declare()
        raw.publish(
            body, headers=headers, properties={"correlation_id": "r-1", "reply_to": queue_name}
        )
        with Consumer(channel, [queue], on_message=received.append):
            deadline = time.monotonic() + 10
            while not received and time.monotonic() < deadline:
                connection.drain_events(timeout=1)
    reply = received[0]
    assert json.loads(reply.body) == {"ok": True, "result": 42, "error": None}
    reply_envelope = Envelope(
        "reply", reply.content_type, reply.content_encoding, "r-1", None, queue_name, reply.headers
    )
    signer().verify(reply.body, reply_envelope)  # the worker's signature, made with k2
    tampered = dataclasses.replace(reply_envelope, correlation_id="r-2")
    with pytest.raises(Exception, match="does not match"):
        signer().verify(reply.body, tampered)


@pytest.mark.usefixtures("still_serving")
def test_large_bodies_travel_compressed_both_ways(client_app):
    blob = "taskrpc " * 300_000  # 2.4 MB, compresses to a few KB
    assert client_app.send_task("size", [blob]).get(timeout=15) == len(blob)
    assert client_app.send_task("echo", [blob]).get(timeout=15) == blob


def test_a_request_inflating_past_the_limit_is_refused_before_it_is_sent(client_app):
    blob = "x" * (5 * 1024 * 1024)  # compresses to ~5 KB, but the limit is on the real size
    with pytest.raises(PayloadTooLarge):
        client_app.send_task("size", [blob])


def test_the_nonce_makes_every_signature_unique():
    envelope = Envelope("request", "application/json", "binary", "c", "r", "q", {})
    first, second = signer().sign(b"{}", envelope), signer().sign(b"{}", envelope)
    assert first[HEADER_NONCE] != second[HEADER_NONCE]
    assert first[HEADER_SIGNATURE] != second[HEADER_SIGNATURE]


@pytest.mark.usefixtures("still_serving")
def test_a_replayed_request_marked_redelivered_does_not_run_again(raw, served, tmp_path):
    """A reader of the queue can make a copy arrive *redelivered* (take it with a
    higher-priority consumer, never ack, close): the worker lets a redelivery through
    only while it has not answered that request, whatever else arrived meanwhile."""
    marker = tmp_path / "marker"
    body = touch_body(str(marker))
    envelope = Envelope(
        "request", "application/json", "binary", "expected-redelivery-1", "", served.queue, TOUCH
    )
    headers = {**TOUCH, **signer().sign(body, envelope)}
    properties = {"correlation_id": "expected-redelivery-1"}
    raw.publish(body, headers=headers, properties=properties)
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "ran\n"
    other = Envelope("request", "application/json", "binary", "", "", served.queue, dict(TOUCH))
    for _ in range(300):  # more answered requests than any fixed-size memory would hold
        junk = touch_body(str(tmp_path / "other"))
        raw.publish(junk, headers={**TOUCH, **signer().sign(junk, other)}, properties={})
    assert raw.app.send_task("add", [1, 2]).get(timeout=30) == 3
    while (queue_state(served.broker_url, served.queue) or (1,))[
        0
    ] and time.monotonic() < deadline + 20:
        time.sleep(0.05)  # every one of them taken by the worker before the copy is sent
    with Connection(served.broker_url) as connection:  # take the copy first, then drop it
        channel = connection.channel()
        channel.basic_qos(0, 1, False)
        taken: list[Any] = []
        channel.basic_consume(
            served.queue, callback=taken.append, arguments={"x-priority": 10}, no_ack=False
        )
        raw.publish(body, headers=headers, properties=properties)
        while not taken and time.monotonic() < deadline + 10:
            connection.drain_events(timeout=1)
        channel.close()  # unacked: back to the queue, marked redelivered, to the worker
    assert taken and taken[0].properties["correlation_id"] == "expected-redelivery-1"
    assert raw.app.send_task("add", [1, 2]).get(timeout=10) == 3
    assert marker.read_text() == "ran\n"
