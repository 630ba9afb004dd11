"""The worker's count and log of rejected deliveries."""

import logging

from taskrpc.worker import rejects
from taskrpc.worker.rejects import Rejections


def test_rejections_are_counted_by_reason():
    rejections = Rejections()
    for reason in ("DecodeError", "DecodeError", rejects.UNDECODABLE):
        rejections.record(reason, "why", delivery_tag=1)
    assert rejections.total == 3
    assert rejections.counts() == {"DecodeError": 2, "Undecodable": 1}


def test_a_flood_is_logged_line_by_line_only_up_to_the_burst(caplog, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(rejects.time, "monotonic", lambda: now[0])
    rejections = Rejections()
    with caplog.at_level(logging.WARNING, logger="taskrpc.worker"):
        for _ in range(500):
            rejections.record("DecodeError", "undecodable body", delivery_tag=7)
        now[0] += rejects.LOG_PERIOD
        rejections.record("DecodeError", "undecodable body", delivery_tag=8)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == rejects.LOG_BURST + 2  # the burst, one summary, the next line
    assert f"{500 - rejects.LOG_BURST} more deliveries rejected" in lines[-2]
    assert rejections.total == 501


def test_the_oldest_outstanding_tag_counts_a_bad_delivery_below_a_request_in_flight():
    from taskrpc.transport import BadDelivery, Delivery
    from taskrpc.worker.acks import oldest_outstanding

    def delivery(tag: int) -> Delivery:
        return Delivery(tag, b"", {}, {}, None, None, "", "q", False, "c")

    bad = [BadDelivery(3, "c", "undecodable", True, None, None, 0, None, "", "q", False)]
    in_flight = {5: delivery(5), 6: delivery(6)}
    # A multiple ack must never cover tag 3 before it is rejected.
    assert oldest_outstanding(bad, in_flight, [delivery(7)]) == 3
    assert oldest_outstanding([], in_flight, [delivery(4)]) == 4
    assert oldest_outstanding([], {}, []) == float("inf")
