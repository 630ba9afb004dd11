"""The reply router: correlation, unknown and duplicate replies, bounded memory."""

import gc
import threading

from taskrpc.client.replies import PendingCall, RawReply, ReplyRouter
from taskrpc.exceptions import ClientClosed


def make_call(router: ReplyRouter, call_id: str) -> PendingCall:
    call = PendingCall(call_id, "task", deadline=1e12)
    router.add(call)
    return call


def test_a_reply_settles_its_call_and_only_its_call():
    router = ReplyRouter()
    first, second = make_call(router, "a"), make_call(router, "b")
    assert router.deliver("a", RawReply(b"body", "application/json"))
    assert first.done and not second.done
    assert first.outcome() == (RawReply(b"body", "application/json"), None)


def test_a_second_reply_for_the_same_id_is_a_counted_duplicate():
    router = ReplyRouter()
    call = make_call(router, "a")
    router.deliver("a", RawReply(b"first", None))
    assert not router.deliver("a", RawReply(b"second", None))
    assert router.stats.duplicate == 1 and router.stats.unknown == 0
    assert call.outcome()[0].body == b"first"


def test_a_reply_with_an_unknown_or_missing_id_is_counted_and_dropped():
    router = ReplyRouter()
    assert not router.deliver("nobody", RawReply(b"x", None))
    assert not router.deliver(None, RawReply(b"x", None))
    assert router.stats.unknown == 2


def test_answered_ids_are_remembered_only_within_the_window():
    router = ReplyRouter(duplicate_window=3)
    calls = [make_call(router, str(i)) for i in range(5)]
    for call in calls:
        router.deliver(call.id, RawReply(b"", None))
    router.deliver("0", RawReply(b"", None))  # fell out of the window
    router.deliver("4", RawReply(b"", None))
    assert (router.stats.unknown, router.stats.duplicate) == (1, 1)


def test_pending_calls_whose_handles_are_dropped_are_forgotten():
    router = ReplyRouter()
    for i in range(1000):
        make_call(router, str(i))
    gc.collect()
    assert len(router) == 0


def test_fail_all_fails_every_waiting_call():
    router = ReplyRouter()
    calls = [make_call(router, str(i)) for i in range(3)]
    assert router.fail_all(ClientClosed("closed")) == 3
    assert all(isinstance(c.outcome()[1], ClientClosed) for c in calls)
    assert len(router) == 0


def test_done_callbacks_run_once_whether_added_before_or_after_settling():
    router = ReplyRouter()
    call = make_call(router, "a")
    seen: list[str] = []
    call.add_done_callback(lambda c: seen.append("before"))
    router.deliver("a", RawReply(b"", None))
    call.add_done_callback(lambda c: seen.append("after"))
    assert seen == ["before", "after"]


def test_concurrent_delivery_settles_each_call_exactly_once():
    router = ReplyRouter()
    calls = [make_call(router, str(i)) for i in range(2000)]

    def deliver_all():
        for i in range(2000):
            router.deliver(str(i), RawReply(b"", None))

    threads = [threading.Thread(target=deliver_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(c.done for c in calls)
    assert router.stats.duplicate == 3 * 2000
