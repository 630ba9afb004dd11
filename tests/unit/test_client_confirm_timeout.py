"""Publishes to a quorum queue the broker never confirms (it lost its majority): the call
fails with NoQuorum after the confirm timeout, well before its deadline.

The state machine is driven by event sequences (no broker, no threads, no clock); the
clients, sync and asyncio, against a scripted broker that never confirms anything.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from taskrpc import (
    App,
    BrokerError,
    ConfigurationError,
    ConnectionLost,
    NoQuorum,
    Settings,
    TimeoutError,
)
from taskrpc.client.base import OutgoingRequest
from taskrpc.client.confirms import ConfirmTimer
from taskrpc.client.states import CONFIRMED, SENT, Publish

from .client_world import World
from .fakebroker import FakeBroker

TIMEOUT = 5.0


def quorum_world(**options) -> World:
    """A world whose queue ``q`` is a quorum queue and ``c`` a classic one."""
    return World(confirm_timer=ConfirmTimer(TIMEOUT, lambda queue: queue == "q"), **options)


def error_of(call):
    assert call.done
    return call.outcome()[1]


@pytest.mark.parametrize("idempotent", [False, True])
def test_an_unconfirmed_publish_fails_with_no_quorum_at_the_confirm_timeout(idempotent):
    world = quorum_world()
    world.connect()
    call = world.new_call(timeout=30, idempotent=idempotent)
    world.submit(call)
    published = world.now
    assert world.machine.next_deadline() == published + TIMEOUT  # the driver wakes then
    world.advance(TIMEOUT - 0.01)
    assert not call.done and call.state == SENT
    world.advance(0.01)
    error = error_of(call)
    assert isinstance(error, NoQuorum) and isinstance(error, BrokerError)
    message = str(error)
    assert "did not confirm t [" in message and "within 5 s" in message
    assert "queue 'q' probably has no quorum" in message
    assert "may still be queued, and run if the quorum returns within 25.0 s" in message
    assert "not sent again" in message
    # Not sent again, idempotent or not; a confirm, a reply or a reconnection come too
    # late to change anything.
    assert len(world.sent) == 1 and world.machine.next_deadline() is None
    world.ack()
    assert world.reply(call) is True  # the broker had it after all: the request ran...
    assert world.router.stats.unknown == 1  # ...and its reply reaches nobody
    world.lose()
    world.connect()
    assert len(world.sent) == 1 and error_of(call) is error
    world.finish()


def test_a_publish_confirmed_in_time_is_not_failed_and_the_timer_forgets_it():
    world = quorum_world()
    world.connect()
    first, second = world.new_call(), world.new_call()
    world.submit(first)
    world.advance(1)
    world.submit(second)
    world.advance(3)
    world.ack(first.tag)
    assert first.state == CONFIRMED
    # The first publish is confirmed: the driver's next wake-up is the second's due.
    assert world.machine.next_deadline() == 1000.0 + 1 + TIMEOUT
    world.advance(1.5)  # past the first's due
    assert not first.done and not second.done
    world.advance(0.5)
    assert isinstance(error_of(second), NoQuorum)
    assert world.reply(first) and error_of(first) is None
    world.finish()


def test_only_the_unconfirmed_of_several_fail_and_a_multiple_ack_clears_them():
    world = quorum_world()
    world.connect()
    calls = [world.new_call() for _ in range(4)]
    for call in calls:
        world.submit(call)
    world.ack(calls[1].tag, multiple=True)  # the first two are confirmed
    world.advance(TIMEOUT)
    assert [call.done for call in calls] == [False, False, True, True]
    assert all(isinstance(error_of(call), NoQuorum) for call in calls[2:])
    world.finish()


def test_classic_queues_are_not_watched_their_calls_wait_for_the_deadline():
    world = quorum_world()
    world.connect()
    call = world.new_call(timeout=30, queue="c")
    world.submit(call)
    assert world.machine.next_deadline() is None
    world.advance(29)
    assert not call.done
    error = world.machine.timeout_error(call)  # what its caller gets at the deadline
    assert isinstance(error, TimeoutError) and "never confirmed it" in str(error)


def test_a_deadline_before_the_confirm_timeout_is_the_deadline_s_error_as_before():
    world = quorum_world()
    world.connect()
    call = world.new_call(timeout=TIMEOUT)
    world.submit(call)
    assert world.machine.next_deadline() is None
    world.advance(TIMEOUT)
    assert not call.done and "no quorum?" in str(world.machine.timeout_error(call))


def test_a_timeout_of_zero_watches_nothing():
    world = World(confirm_timer=ConfirmTimer(0.0))
    world.connect()
    call = world.new_call(timeout=30)
    world.submit(call)
    world.advance(29)
    assert not call.done and world.machine.next_deadline() is None


def test_while_the_broker_blocks_the_connection_an_overdue_publish_gets_a_new_timeout():
    world = quorum_world()
    world.connect()
    call = world.new_call(timeout=60)
    world.submit(call)
    world.machine.blocked("low on memory")
    world.advance(TIMEOUT + 1)  # overdue, but the broker said why it is silent
    assert not call.done
    world.run(world.machine.unblocked(world.now))
    world.advance(TIMEOUT - 0.5)
    assert not call.done
    world.advance(0.5)
    assert isinstance(error_of(call), NoQuorum)


def test_a_publish_resent_on_a_new_connection_gets_its_own_timeout():
    # Delivery tags count from 1 on each connection: the resent publish has the tag of
    # the first, whose due must not fail it early.
    world = quorum_world()
    world.connect()
    call = world.new_call(timeout=60, idempotent=True)
    world.submit(call)
    world.advance(3)
    world.lose()
    world.connect()  # resent (idempotent), tag 1 again
    assert len(world.sent) == 2 and call.tag == 1
    world.advance(TIMEOUT - 1)  # past the first publish's due
    assert not call.done
    world.advance(1)
    assert isinstance(error_of(call), NoQuorum)


def test_a_connection_lost_first_is_connection_lost_as_before():
    world = quorum_world()
    world.connect()
    call = world.new_call(timeout=60)
    world.submit(call)
    world.advance(1)
    world.lose()
    assert isinstance(error_of(call), ConnectionLost)
    world.connect()
    world.advance(TIMEOUT)
    assert world.machine.next_deadline() is None


def test_a_fire_and_forget_call_fails_with_no_quorum_too():
    world = quorum_world()
    world.connect()
    call = world.new_call(timeout=30, fire=True)
    world.submit(call)
    world.advance(TIMEOUT)
    assert isinstance(error_of(call), NoQuorum)


def test_a_cancelled_call_is_dropped_from_the_timer():
    world = quorum_world()
    world.connect()
    call = world.new_call(timeout=30)
    world.submit(call)
    world.cancel(call)
    assert world.machine.next_deadline() is None
    world.finish()


def test_a_delayed_call_published_into_the_delay_cascade_is_not_watched():
    world = quorum_world()
    world.connect()
    request = OutgoingRequest(
        id="delayed",
        task="t",
        queue="q",
        body=b"{}",
        content_type="application/json",
        content_encoding="binary",
        properties={"correlation_id": "delayed"},
        base_headers={},
        deadline=world.now + 60,
        due=world.now + 10,
        expires=False,
    )
    call = world.new_call(timeout=60)
    call.request = request
    actions = world.machine.submit(call, world.now)
    publish = next(action for action in actions if isinstance(action, Publish))
    assert publish.exchange != "taskrpc"  # into the cascade, which confirms it
    assert world.machine.next_deadline() is None


# -- settings --------------------------------------------------------------------------


def test_the_setting_defaults_to_five_seconds_and_reads_the_environment():
    assert Settings.from_env({}).publish_confirm_timeout == 5.0
    env = {"TASKRPC_PUBLISH_CONFIRM_TIMEOUT": "2.5"}
    assert Settings.from_env(env).publish_confirm_timeout == 2.5
    assert Settings(publish_confirm_timeout=0).publish_confirm_timeout == 0
    with pytest.raises(ConfigurationError, match="publish_confirm_timeout"):
        Settings(publish_confirm_timeout=-1)


def test_for_settings_watches_quorum_queues_only():
    settings = Settings(queue_type="quorum", queue_types=("plain=classic",))
    timer = ConfirmTimer.for_settings(settings)
    timer.arm(1, "orders", 0.0, 60.0)
    timer.arm(2, "plain", 0.0, 60.0)
    call = World().new_call()
    assert timer.next({1: call, 2: call}) == 5.0
    assert timer.overdue(5.0, {1: call, 2: call}) == [call]


# -- the clients, against a broker that never confirms ---------------------------------


@pytest.fixture
def silent_quorum():
    """A scripted broker that answers declarations but never confirms a publish."""
    broker = FakeBroker()
    app = App(
        "confirms",
        broker_url=broker.url,
        queue_type="quorum",
        publish_confirm_timeout=0.5,
        broker_heartbeat=0,
    )
    yield app
    app.close()
    broker.close()


def test_a_sync_caller_waiting_on_its_call_is_woken_with_no_quorum(silent_quorum):
    started = time.monotonic()
    result = silent_quorum.client.send("t", [1], timeout=30, idempotent=True)
    with pytest.raises(NoQuorum, match="within 0.5 s"):
        result.get()  # the caller reads the socket itself: the I/O thread must wake it
    took = time.monotonic() - started
    assert 0.5 <= took < 3, took


def test_a_sync_fire_and_forget_publish_fails_with_no_quorum(silent_quorum):
    with pytest.raises(NoQuorum):
        silent_quorum.client.publish("t", [1], timeout=30)


def test_an_asyncio_caller_gets_no_quorum(silent_quorum):
    async def call() -> float:
        started = time.monotonic()
        pending = await silent_quorum.async_client.send("t", [1], timeout=30)
        with pytest.raises(NoQuorum):
            await pending
        return time.monotonic() - started

    took = asyncio.run(call())
    assert 0.5 <= took < 3, took
