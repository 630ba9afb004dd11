"""Broker flow control: under a RabbitMQ memory alarm, on a node of the test's own.

RabbitMQ stops reading the sockets of publishing connections and tells clients with
``connection.blocked``. The asyncio client must keep its event loop free meanwhile;
both clients fail calls at their deadline with an error that names the broker's flow
control, and succeed again once the alarm clears.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator

import pytest

from taskrpc import App, TimeoutError
from taskrpc.testing.rabbitnode import RabbitNode, rabbitmq_available

pytestmark = [pytest.mark.broker, pytest.mark.timeout(240)]

#: The node and port assigned to these tests.
NODE, PORT = "taskrpc-alarm", 5691

#: Memory high watermark that trips the alarm at once, and RabbitMQ's default.
ALARM, NORMAL = "0.0000001", "0.4"


@pytest.fixture(scope="module")
def alarm_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    if not rabbitmq_available():
        if os.environ.get("CI"):
            pytest.fail("rabbitmq-server is needed for the memory-alarm tests in CI")
        pytest.skip("rabbitmq-server is not installed here")
    node = RabbitNode(NODE, amqp_port=PORT, base_dir=tmp_path_factory.mktemp("alarm"))
    node.start(timeout=120)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def served(alarm_node: RabbitNode, start_worker) -> Iterator[App]:
    app = App("alarmed", broker_url=alarm_node.url, default_queue=f"alarm.{uuid.uuid4().hex}")

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    start_worker(app, pool="threads", concurrency=2)
    assert app.send_task("add", [1, 1], timeout=20).get() == 2  # it has published: blockable
    try:
        yield app
    finally:
        app.close()


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


class Alarm:
    """Sets the node's memory alarm on entry, always clears it on exit."""

    def __init__(self, node: RabbitNode) -> None:
        self.node = node

    def __enter__(self) -> Alarm:
        self.node.ctl("set_vm_memory_high_watermark", ALARM)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.node.ctl("set_vm_memory_high_watermark", NORMAL)


def test_under_a_memory_alarm_both_clients_fail_at_the_deadline_naming_flow_control(
    alarm_node: RabbitNode, served: App
) -> None:
    app = served

    async def warm_up() -> int:
        return int(await app.async_client.call("add", 2, 2, timeout=20))

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(warm_up()) == 4
        machines = [app.client._machine, app.async_client._machine]
        with Alarm(alarm_node):
            # RabbitMQ blocks a connection (and says connection.blocked) once it publishes
            # under the alarm: calls sent before the client hears it stay unconfirmed,
            # later ones are held back and never published; all name the flow control.
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="connection.blocked") as sync_info:
                app.send_task("add", [3, 3], timeout=2).get()
            sync_elapsed = time.monotonic() - started
            lags, errors, async_elapsed = loop.run_until_complete(blocked_calls(app))
            states = [machine.state for machine in machines]
            # Now that the client knows, new calls are held back, never published.
            _, held, _ = loop.run_until_complete(blocked_calls(app, count=5, timeout=1))
        print(
            f"\nunder the alarm: sync call failed after {sync_elapsed:.2f} s "
            f"({sync_info.value}); {len(errors)} asyncio calls failed after "
            f"{async_elapsed:.2f} s ({sum(e.started is False for e in errors)} never "
            f"published); event-loop lag over {len(lags)} ticks: "
            f"max {max(lags) * 1000:.1f} ms, median {sorted(lags)[len(lags) // 2] * 1000:.1f} ms"
        )
        assert states == ["BLOCKED", "BLOCKED"]
        assert 1.9 <= sync_elapsed < 4  # at its deadline (generous for a busy machine)
        assert all(isinstance(e, TimeoutError) and "connection.blocked" in str(e) for e in errors)
        assert len(errors) == 20 and len(held) == 5
        assert all(e.started is False and "connection.blocked" in str(e) for e in held)
        assert max(lags) < 0.5  # generous: the loop never waits for the broker
        # The alarm cleared: calls go through again, from both clients.
        wait_until(lambda: all(machine.state == "READY" for machine in machines))
        assert app.send_task("add", [4, 4], timeout=20).get() == 8
        assert loop.run_until_complete(warm_up()) == 4
    finally:
        loop.close()


async def blocked_calls(
    app: App, count: int = 20, timeout: float = 2
) -> tuple[list[float], list[BaseException], float]:
    """``count`` asyncio calls with a deadline while a ticker measures the loop's lag."""
    lags: list[float] = []
    done = False

    async def ticker() -> None:
        while not done:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - before - 0.01)

    ticking = asyncio.ensure_future(ticker())
    started = time.monotonic()
    calls = [app.async_client.call("add", i, i, timeout=timeout) for i in range(count)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    elapsed = time.monotonic() - started
    done = True
    await ticking
    return lags, [r for r in results if isinstance(r, BaseException)], elapsed
