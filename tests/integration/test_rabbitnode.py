"""The extra-node launcher the fault tests build on: start, use, kill, restart."""

from __future__ import annotations

from collections.abc import Callable

from kombu import Connection

from taskrpc.testing.rabbitnode import RabbitNode

#: Port of this test's own node (other fault tests use 5681 to 5703).
PORT = 5711


def _round_trip(url: str) -> bytes:
    with Connection(url, connect_timeout=5) as connection:
        queue = connection.SimpleQueue("rabbitnode-check")
        queue.put(b"hello", serializer=None)
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
        return message.body


def test_an_extra_node_serves_amqp_survives_kill_and_restarts(
    rabbit_node: Callable[..., RabbitNode],
) -> None:
    node = rabbit_node("taskrpc-nodecheck", PORT)
    assert node.url.endswith(f":{PORT}//")
    assert _round_trip(node.url) == b"hello"
    assert node.nodename in node.ctl("status")

    node.kill()
    assert not node.running
    node.start()
    assert _round_trip(node.url) == b"hello"
