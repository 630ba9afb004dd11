"""Unknown and duplicate replies injected into a client's callback queue by a raw publisher."""

from __future__ import annotations

import time

import pytest

from taskrpc.messages import reply_headers
from taskrpc.testing.broker import publish_raw

pytestmark = pytest.mark.broker


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def add(rpc_app, start_worker):
    @rpc_app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    start_worker(rpc_app, pool="solo")
    return add


def inject(broker_url: str, client, correlation_id: str, body: bytes) -> None:
    publish_raw(
        broker_url,
        client._listener.reply_to,
        body,
        properties={"correlation_id": correlation_id},
        headers=reply_headers(True),
    )


def test_a_duplicate_reply_is_dropped_and_counted(add, rpc_app, broker_url):
    result = add.delay(1, 2)
    assert result.get(timeout=10) == 3
    client = rpc_app.client
    inject(broker_url, client, result.id, b'{"ok": true, "result": 999}')
    wait_until(lambda: client.duplicate_replies == 1)
    assert result.get() == 3 and client.unknown_replies == 0


def test_a_duplicate_arriving_before_get_does_not_replace_the_first_reply(add, rpc_app, broker_url):
    result = add.delay(20, 22)
    client = rpc_app.client
    wait_until(result.ready)
    inject(broker_url, client, result.id, b'{"ok": true, "result": -1}')
    wait_until(lambda: client.duplicate_replies == 1)
    assert result.get(timeout=10) == 42


def test_an_unknown_reply_is_dropped_and_counted(add, rpc_app, broker_url):
    assert add.delay(1, 1).get(timeout=10) == 2
    client = rpc_app.client
    inject(broker_url, client, "f" * 32, b'{"ok": true, "result": 0}')
    inject(broker_url, client, "", b"garbage")
    wait_until(lambda: client.unknown_replies == 2)
    assert add.delay(2, 2).get(timeout=10) == 4 and client.duplicate_replies == 0


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"ok": false}', b'{"ok": "maybe", "result": 1}', b"\xff" * 64],
    ids=["not-json", "error-without-details", "wrong-envelope", "bytes"],
)
def test_a_garbled_reply_is_dropped_and_counted_and_the_call_keeps_waiting(
    rpc_app, broker_url, body
):
    from taskrpc import TimeoutError

    client = rpc_app.client
    result = rpc_app.send_task("nobody.serves.this", queue=rpc_app.settings.default_queue)
    inject(broker_url, client, result.id, body)
    wait_until(lambda: client.rejected_replies == 1)
    assert not result.ready()
    with pytest.raises(TimeoutError, match="a reply was dropped: BadReply"):
        result.get(timeout=0.2)
    inject(broker_url, client, result.id, b'{"ok": true, "result": 42}')  # the genuine one
    assert result.get(timeout=10) == 42
    assert client.unknown_replies == 0 and client.duplicate_replies == 0
