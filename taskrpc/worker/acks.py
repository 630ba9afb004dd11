"""Acking answered requests in batches, as the consume loop does.

Answered requests are acked together, with one ``multiple`` ack, at the end of each pass
of the loop, or sooner once :data:`ACK_BATCH` are waiting or the oldest has waited
:data:`ACK_DELAY`: batching saves a frame per request under load, and the bound keeps the
window between reply and ack (a crash there means a second run) short.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from ..transport import BadDelivery, Delivery

#: Answered requests waiting for their ack at most (then they are acked at once).
ACK_BATCH = 64
#: Seconds the oldest answered request waits for its ack at most.
ACK_DELAY = 0.002


def ack_answered(send_ack: Callable[[int, bool], Any], tags: list[int], oldest: float) -> None:
    """Ack the answered requests ``tags``: one ``multiple`` ack for every tag below
    ``oldest`` (the oldest request still in hand), one ack each for the rest."""
    below = [tag for tag in tags if tag < oldest]
    if below:
        send_ack(max(below), len(below) > 1)
    for tag in tags:
        if tag >= oldest:
            send_ack(tag, False)


def oldest_outstanding(
    bad: Collection[BadDelivery], in_flight: Mapping[int, Delivery], inbox: Sequence[Delivery]
) -> float:
    """The lowest delivery tag received and not yet answered (started or waiting)."""
    oldest: float = float("inf")
    if bad:  # undecodable, to be answered and rejected
        oldest = min(delivery.delivery_tag for delivery in bad)
    if in_flight:  # insertion order is start order, and requests start in order
        oldest = min(oldest, next(iter(in_flight)))
    if inbox:
        oldest = min(oldest, inbox[0].delivery_tag)
    return oldest
