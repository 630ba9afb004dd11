"""Deliveries the transport could not take: undecodable ones, and ones too large.

The transport hands them to :meth:`BadDeliveries.take` in the middle of a read, so it
only keeps them. One too large, its body dropped unread, waits in the loop's inbox as a
request with an empty body, refused in turn like any request (:func:`.refusals.too_large`) so that
its caller hears why. An undecodable one is answered (unsigned) if it names a
``reply_to``, then rejected, by the loop in its own thread (:meth:`BadDeliveries.answer`).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import BadRequest
from ..transport import BadDelivery, Delivery, Transport
from .admission import refusal
from .executor import Job
from .rejects import UNDECODABLE, Rejections
from .replying import UNENCODABLE, Publish, publish_reply

if TYPE_CHECKING:
    from ..app import App

#: How the loop rejects a delivery: tag, reason, detail, request id.
Reject = Callable[[Any, str, str, object], None]


class BadDeliveries:
    """The bad deliveries of one consume loop, until it has answered and rejected them.

    Parameters:
        inbox: The loop's inbox, where one too large waits as a request.
        rejections: Counts the deliveries of a no-ack consumer, dropped at once.
    """

    def __init__(
        self,
        app: App,
        transport: Transport,
        inbox: collections.deque[Delivery],
        rejections: Rejections,
    ) -> None:
        self.app = app
        self.transport = transport
        self.rejections = rejections
        self._inbox = inbox
        #: Undecodable, to be answered and rejected by the loop.
        self.pending: collections.deque[BadDelivery] = collections.deque()
        #: Delivery tag -> body size announced, of those too large (in the inbox).
        self.oversized: dict[int, int] = {}

    def take(self, bad: BadDelivery) -> None:
        """The transport's hook: a delivery it could not decode, or too large to take."""
        if bad.properties is not None and bad.needs_settling:
            # Too large, its body dropped unread: refused in turn like any request, so
            # that its caller hears why (the size is checked before anything else).
            self.oversized[bad.delivery_tag] = bad.announced
            self._inbox.append(without_body(bad, bad.properties))
        elif bad.needs_settling:  # answered (unsigned) if it can be, then rejected,
            self.pending.append(bad)  # by the loop: this runs in the middle of a read
            self.transport.wake()
        else:  # a no-ack consumer's: nothing to reject
            self.rejections.record(UNDECODABLE, bad.reason, delivery_tag=bad.delivery_tag)

    def answer(self, publish: Publish, queue_of: Mapping[str, str], reject: Reject) -> None:
        """Answer the callers of undecodable deliveries that named a ``reply_to``, then
        reject those deliveries (``queue_of``: the queue of each consumer tag)."""
        pending = self.pending
        while pending:
            bad = pending.popleft()
            queue = queue_of.get(bad.consumer_tag, "")
            kind = answer_bad(self.app, publish, bad, queue)
            reject(bad.delivery_tag, kind, bad.reason, bad.correlation_id)


def kind_of(bad: BadDelivery) -> str:
    """The refusal a bad delivery is answered and counted as: too large, or undecodable."""
    return "PayloadTooLarge" if bad.reason.startswith("body of") else UNDECODABLE


def answer_bad(app: App, publish: Publish, bad: BadDelivery, queue: str) -> str:
    """Answer (unsigned) the caller of a delivery that could not be read, taken from
    ``queue``, if it named a ``reply_to``; return the reason to reject it with."""
    kind = kind_of(bad)
    error = BadRequest(bad.reason, type_name=kind)
    bare = app.bare_task(queue) if queue else None
    job = Job(bad.correlation_id or "", bare.name if bare else "", b"", None)
    job = dataclasses.replace(job, reply_to=bad.reply_to, routing_key=queue)
    # Not a request (no hooks run): counted by the rejections, which metrics export.
    outcome = refusal(app, dataclasses.replace(job, bare=bare is not None), error)
    outcome = dataclasses.replace(outcome, verified=False)
    if bad.reply_to:
        properties = {"reply_to": bad.reply_to, "correlation_id": bad.correlation_id}
        answer = Delivery(bad.delivery_tag, b"", properties, {}, None, None, "", queue, False, "")
        try:
            publish_reply(app, publish, answer, outcome)
        except UNENCODABLE:
            pass  # unanswerable after all: rejected all the same
    return kind


def without_body(bad: BadDelivery, properties: dict[str, Any]) -> Delivery:
    """A delivery too large to take, as a request with an empty body (``properties``:
    its own, which decoded)."""
    return Delivery(
        bad.delivery_tag,
        b"",
        properties,
        properties.get("application_headers") or {},
        properties.get("content_type"),
        properties.get("content_encoding"),
        bad.exchange,
        bad.routing_key,
        bad.redelivered,
        bad.consumer_tag,
    )
