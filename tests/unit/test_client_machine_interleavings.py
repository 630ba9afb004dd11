"""Random interleavings of calls and connection faults (hypothesis): the machine's
invariants hold after every event, and at the end every call has ended exactly once,
none hangs, and none reached the broker more often than its task allows."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskrpc.client.confirms import ConfirmTimer
from taskrpc.client.states import BLOCKED, CONNECTING, READY

from .client_world import World

EVENTS = st.one_of(
    st.tuples(st.just("call"), st.booleans(), st.sampled_from([0.05, 1.0, 30.0])),
    st.tuples(st.just("hand_over"), st.booleans(), st.sampled_from([0.05, 1.0, 30.0])),
    st.tuples(st.just("fire"), st.none(), st.sampled_from([0.05, 30.0])),
    st.tuples(st.just("drain"), st.none(), st.none()),
    st.tuples(st.just("connect"), st.none(), st.none()),
    st.tuples(st.just("lose"), st.none(), st.none()),
    st.tuples(st.just("break_write"), st.none(), st.none()),
    st.tuples(st.just("ack"), st.booleans(), st.integers(0, 5)),
    st.tuples(st.just("nack"), st.none(), st.integers(0, 5)),
    st.tuples(st.just("return"), st.none(), st.integers(0, 5)),
    st.tuples(st.just("reply"), st.none(), st.integers(0, 30)),
    st.tuples(st.just("cancel"), st.none(), st.integers(0, 30)),
    st.tuples(st.just("block"), st.none(), st.none()),
    st.tuples(st.just("unblock"), st.none(), st.none()),
    st.tuples(st.just("tick"), st.none(), st.sampled_from([0.01, 0.5, 2.0])),
)


#: Time passing, more often: confirm timeouts fall due between the other events.
TICKS = st.tuples(st.just("tick"), st.none(), st.sampled_from([0.1, 0.25, 0.5]))


def apply(world: World, event: tuple) -> None:  # noqa: C901 - one branch per event kind
    kind, flag, value = event
    state = world.machine.state
    tags = world.unconfirmed_tags()
    if kind == "call":
        world.submit(world.new_call(idempotent=flag, timeout=value))
    elif kind == "hand_over":
        world.hand_over(world.new_call(idempotent=flag, timeout=value))
    elif kind == "fire":
        world.submit(world.new_call(fire=True, timeout=value))
    elif kind == "drain":
        world.drain_inbox()
    elif kind == "connect" and state == CONNECTING:
        world.connect()
    elif kind == "lose" and state in (READY, BLOCKED):
        world.lose()
    elif kind == "break_write" and state == READY:
        world.break_next_write = True
    elif kind == "ack" and tags:
        world.ack(tags[value % len(tags)], multiple=flag)
    elif kind == "nack" and tags:
        world.nack(tags[value % len(tags)])
    elif kind == "return" and tags:
        call = world.machine._unconfirmed[tags[value % len(tags)]]
        world.machine.returned(call.id, "NO_ROUTE")
    elif kind == "reply" and world.calls:
        world.reply(world.calls[value % len(world.calls)])
    elif kind == "cancel" and world.calls:
        world.cancel(world.calls[value % len(world.calls)])
    elif kind == "block" and state == READY:
        world.machine.blocked("low on memory")
    elif kind == "unblock" and state == BLOCKED:
        world.run(world.machine.unblocked(world.now))
    elif kind == "tick":
        world.advance(value)
    world.check()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(st.lists(EVENTS, max_size=60))
def test_any_interleaving_ends_every_call_exactly_once(events):
    world = World()
    for event in events:
        apply(world, event)
    world.finish()


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(EVENTS, max_size=40))
def test_without_publisher_confirms_too(events):
    world = World(confirms=False)
    for event in events:
        apply(world, event)
    world.finish()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(st.lists(st.one_of(EVENTS, TICKS), min_size=10, max_size=60))
def test_with_a_confirm_timeout_too(events):
    # Unconfirmed publishes also fail with NoQuorum after 0.3 s (more ticks).
    world = World(confirm_timer=ConfirmTimer(0.3))
    world.connect()
    for event in events:
        apply(world, event)
        if event[0] == "tick":  # expired what was due: the driver's next wake-up is later
            due = world.machine.next_deadline()
            assert due is None or due > world.now, "the driver would spin"
    world.finish()
