"""The client state machine, driven by event sequences: no broker, no threads, no clock."""

from __future__ import annotations

import pytest

from taskrpc import BrokerError, ClientClosed, ConnectionLost, TimeoutError, Unroutable
from taskrpc.client.states import (
    BLOCKED,
    CONFIRMED,
    CONNECTING,
    QUEUED,
    READY,
    SENT,
    IllegalTransition,
)

from .client_world import PUBLISH_RETRY, RESEND, World


def error_of(call):
    assert call.done
    return call.outcome()[1]


def test_a_call_submitted_while_connecting_is_published_once_connected():
    world = World()
    call = world.new_call(timeout=10)
    world.submit(call)
    assert call.state == QUEUED and not world.sent
    world.advance(4)  # waited 4 s for the connection
    world.connect()
    assert [s.call for s in world.sent] == [call] and call.state == SENT
    world.ack()
    assert call.state == CONFIRMED and call.confirmed
    assert world.reply(call) and call.done and error_of(call) is None


def test_expiration_is_the_time_left_at_each_publish_not_the_whole_timeout():
    world = World()
    call = world.new_call(timeout=10, idempotent=True)
    world.submit(call)
    world.advance(2.5)
    world.connect()
    world.advance(3)
    world.lose()
    world.connect()
    assert [s.expiration for s in world.sent] == [7500, 4500]


def test_expiration_is_never_below_one_millisecond():
    world = World()
    call = world.new_call(timeout=1)
    world.submit(call)
    world.now += 0.9999  # no expire() on the way: the publish itself must clamp
    world.connect()
    assert world.sent[0].expiration == 1


def test_a_call_whose_deadline_passed_before_publishing_fails_locally_and_is_never_sent():
    world = World()
    call = world.new_call(timeout=1)
    world.submit(call)
    world.now += 1  # the deadline passes while connecting (no expire() tick yet)
    world.connect()
    error = error_of(call)
    assert isinstance(error, TimeoutError) and error.started is False
    assert "before it could be published" in str(error) and not world.sent


def test_queued_calls_expire_on_their_own_naming_the_missing_connection():
    world = World()
    world.run(world.machine.connection_lost("ConnectionRefusedError: refused", world.now))
    call = world.new_call(timeout=2)
    world.submit(call)
    world.advance(2)
    error = error_of(call)
    assert isinstance(error, TimeoutError) and "no connection to the broker" in str(error)
    assert "ConnectionRefusedError" in str(error) and error.started is False


@pytest.mark.parametrize("idempotent", [False, True])
def test_a_publish_in_doubt_is_resent_only_if_its_task_is_idempotent(idempotent):
    world = World()
    world.connect()
    call = world.new_call(idempotent=idempotent)
    world.submit(call)
    assert call.state == SENT
    world.lose()  # sent, not confirmed: it may be in the queue
    world.connect()
    if idempotent:
        assert not call.done and len(world.sent) == 2 and world.sent[1].connection == 2
        world.ack()
        assert world.reply(call) and error_of(call) is None
    else:
        error = error_of(call)
        assert isinstance(error, ConnectionLost) and "may have run" in str(error)
        assert "before the broker confirmed it" in str(error) and len(world.sent) == 1


def test_a_confirmed_call_whose_reply_queue_went_fails_unless_idempotent():
    world = World()
    world.connect()
    plain, idem = world.new_call(), world.new_call(idempotent=True)
    world.submit(plain)
    world.submit(idem)
    world.ack(world.unconfirmed_tags()[-1], multiple=True)
    world.lose()
    assert "reply queue lost" in str(error_of(plain)) and "may have run" in str(error_of(plain))
    assert not idem.done and idem.state == QUEUED


def test_an_idempotent_call_is_resent_at_most_resend_max_retries_times():
    world = World()
    call = world.new_call(idempotent=True, timeout=100)
    world.submit(call)
    for _ in range(RESEND.max_retries + 2):
        world.connect()
        world.lose()
    assert isinstance(error_of(call), ConnectionLost)
    assert world.reached(call) == 1 + RESEND.max_retries


def test_a_refused_publish_is_sent_again_within_publish_retry_then_fails():
    world = World()
    world.connect()
    call = world.new_call()
    world.submit(call)
    for _ in range(PUBLISH_RETRY.max_retries):
        world.nack()
        assert not call.done and call.state == SENT
    world.nack()
    assert isinstance(error_of(call), BrokerError)
    assert len(world.sent) == 1 + PUBLISH_RETRY.max_retries and world.reached(call) == 0


def test_a_publish_whose_write_failed_is_sent_on_the_next_connection_not_failed():
    world = World()
    world.connect()
    world.break_next_write = True
    call = world.new_call()
    world.submit(call)  # the write fails: never reached the broker
    assert world.machine.state == CONNECTING and not call.done and call.state == QUEUED
    world.connect()
    assert world.reached(call) == 1 and call.publishes == 1


def test_a_returned_publish_fails_unroutable_when_confirmed():
    world = World()
    world.connect()
    call = world.new_call()
    world.submit(call)
    world.machine.returned(call.id, "NO_ROUTE")
    world.ack()
    assert isinstance(error_of(call), Unroutable) and "NO_ROUTE" in str(error_of(call))


def test_a_reply_before_its_confirm_settles_the_call_and_the_confirm_is_ignored():
    world = World()
    world.connect()
    call = world.new_call()
    world.submit(call)
    assert world.reply(call)
    world.ack()
    world.lose()
    assert error_of(call) is None and world.settles[call.id] == 1


def test_nothing_is_published_while_the_broker_blocks_and_deadlines_name_it():
    world = World()
    world.connect()
    sent_early = world.new_call(timeout=5)
    world.submit(sent_early)  # written before the broker said it blocks
    world.machine.blocked("low on memory")
    assert world.machine.state == BLOCKED
    waiting = world.new_call(timeout=5)
    world.submit(waiting)
    assert waiting.state == QUEUED and len(world.sent) == 1
    assert "connection.blocked" in str(world.machine.timeout_error(sent_early))
    world.advance(5)
    never_sent = error_of(waiting)  # failed locally: it will never be published
    assert isinstance(never_sent, TimeoutError) and never_sent.started is False
    assert "connection.blocked, low on memory" in str(never_sent)
    assert not sent_early.done  # published: its caller times out, a late reply may come
    unconfirmed = world.machine.timeout_error(sent_early)
    assert "never confirmed it" in str(unconfirmed) and "connection.blocked" in str(unconfirmed)


def test_calls_queued_while_blocked_are_published_once_unblocked():
    world = World()
    world.connect()
    world.machine.blocked("low on memory")
    call = world.new_call()
    world.submit(call)
    world.run(world.machine.unblocked(world.now))
    assert world.machine.state == READY and world.reached(call) == 1


def test_submitting_a_call_twice_is_refused():
    world = World()
    call = world.new_call()
    world.submit(call)
    with pytest.raises(IllegalTransition):
        world.submit(call)
    world.connect()
    with pytest.raises(IllegalTransition):
        world.submit(call)


def test_a_call_cancelled_before_it_reached_the_machine_is_never_sent():
    world = World()
    world.connect()
    call = world.new_call()
    world.hand_over(call)
    world.cancel(call)
    world.drain_inbox()
    assert not world.sent and world.settles[call.id] == 1
    world.finish()


@pytest.mark.parametrize(
    "events",
    [["connected", "connected"], ["unblocked_while_connecting"], ["close", "connected"]],
)
def test_connection_events_the_state_does_not_allow_raise_at_once(events):
    world = World()
    with pytest.raises(IllegalTransition):
        for event in events:
            if event == "connected":
                world.connect()
            elif event == "close":
                world.run(world.machine.close())
            else:
                world.run(world.machine.unblocked(world.now))


def test_an_ack_for_a_call_no_longer_sent_is_refused_as_a_bug():
    world = World()
    world.connect()
    call = world.new_call()
    world.submit(call)
    world.ack()
    with pytest.raises(IllegalTransition):
        world.machine._unconfirmed[99] = call  # a driver bug: a tag mapped twice
        world.ack(99)


def test_closing_fails_every_call_and_refuses_new_ones():
    world = World()
    world.connect()
    calls = [world.new_call() for _ in range(3)]
    for call in calls:
        world.submit(call)
    world.ack(world.unconfirmed_tags()[0])
    world.run(world.machine.close())
    assert all(isinstance(error_of(call), ClientClosed) for call in calls)
    with pytest.raises(ClientClosed):
        world.submit(world.new_call())


def test_the_double_publish_race_a_call_handed_over_across_a_loss_is_sent_once():
    # The old client registered a call with the router, then queued it: a loss between
    # the two re-queued it from the router and the submit queued it again. Here the call
    # is in exactly one place at every step: the hand-over inbox, then the machine.
    world = World()
    world.connect()
    call = world.new_call()
    world.hand_over(call)
    world.lose()
    world.drain_inbox()
    world.connect()
    assert [s.call for s in world.sent] == [call] and world.sent[0].connection == 2
    world.ack()
    assert world.reply(call) and error_of(call) is None
    world.finish()


#: The steps of one call; a loss is injected before each of them (and after the last).
STEPS = ["hand_over", "submit", "ack", "reply"]


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
@pytest.mark.parametrize(
    "cut", range(len(STEPS) + 1), ids=["before-" + s for s in STEPS] + ["after"]
)
@pytest.mark.parametrize("break_write", [False, True], ids=["loss", "loss-in-write"])
def test_a_connection_loss_between_any_two_steps_ends_the_call_exactly_once(
    idempotent, cut, break_write
):
    world = World()
    world.connect()
    call = world.new_call(idempotent=idempotent)
    for index, step in enumerate(STEPS):
        if index == cut:
            if break_write and step == "submit":
                world.break_next_write = True
            else:
                world.lose()
                world.connect()
        if step == "hand_over":
            world.hand_over(call)
        elif step == "submit":
            world.drain_inbox()
        elif step == "ack" and world.unconfirmed_tags():
            world.ack()
        elif step == "reply":
            world.reply(call)
    if cut == len(STEPS):
        world.lose()
    world.finish()  # asserts: ends exactly once, none hangs, at most one publish reached
    plain_lost = not idempotent and cut in (2, 3) and not break_write
    if plain_lost:
        assert isinstance(error_of(call), ConnectionLost)


@pytest.mark.parametrize("confirms", [True, False], ids=["confirms", "in-process"])
def test_a_fire_and_forget_call_is_sent_without_reply_to_and_done_when_confirmed(confirms):
    world = World(confirms=confirms)
    world.connect()
    call = world.new_call(fire=True)
    world.submit(call)
    assert len(world.sent) == 1  # and World.run checked it carries no reply_to
    if confirms:
        assert not call.done
        world.ack()
    assert (
        call.done and call.outcome() == (None, None) and call.id not in dict(world.router._pending)
    )
