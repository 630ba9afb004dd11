"""What py-amqp calls back on an AMQP connection, turned into the transport's hooks.

Publisher confirms (parsed by :mod:`.inbound`, or py-amqp's ``basic_ack`` /
``basic_nack`` events), returned mandatory publishes, ``connection.blocked`` /
``connection.unblocked``, deliveries :mod:`.inbound` could not take, and, when our own
frame parsing is off, py-amqp's messages: each handed to what the transport's owner set
(see :class:`~taskrpc.transport.base.Transport`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .base import BadDelivery, Delivery, OnConfirm, OnDelivery, Returned

logger = logging.getLogger("taskrpc.transport")


class AmqpEvents:
    """The ``on_*`` hooks of :class:`~taskrpc.transport.amqp.AmqpTransport` and the
    callbacks it registers with py-amqp and :mod:`.inbound` to call them."""

    on_confirm: OnConfirm | None
    on_return: Callable[[Returned], None] | None
    on_blocked: Callable[[str], None] | None
    on_unblocked: Callable[[], None] | None
    on_bad_delivery: Callable[[BadDelivery], None] | None

    def __init__(self) -> None:
        super().__init__()
        self.on_confirm = None
        self.on_return = None
        self.on_blocked = None
        self.on_unblocked = None
        self.on_bad_delivery = None

    def reject(self, delivery_tag: int, requeue: bool) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _confirmed(self, delivery_tag: int, multiple: bool, ack: bool) -> None:
        if self.on_confirm is not None:
            self.on_confirm(delivery_tag, multiple, ack)

    def _acked(self, delivery_tag: int, multiple: bool) -> None:
        if self.on_confirm is not None:
            self.on_confirm(delivery_tag, multiple, True)

    def _nacked(self, delivery_tag: int, multiple: bool) -> None:
        if self.on_confirm is not None:
            self.on_confirm(delivery_tag, multiple, False)

    def _returned(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        if self.on_return is not None:
            code = getattr(exc, "code", 312) or 312
            properties = dict(getattr(message, "properties", None) or {})
            self.on_return(Returned(int(code), str(exc), exchange, routing_key, properties))

    def _bad(self, bad: BadDelivery) -> None:
        if self.on_bad_delivery is not None:
            self.on_bad_delivery(bad)
        elif bad.needs_settling:  # the default: refused, not requeued (it would come back)
            logger.warning("rejected delivery %s: %s", bad.delivery_tag, bad.reason)
            self.reject(bad.delivery_tag, requeue=False)

    def _blocked(self, reason: str) -> None:
        if self.on_blocked is not None:
            self.on_blocked(str(reason))

    def _unblocked(self) -> None:
        if self.on_unblocked is not None:
            self.on_unblocked()


def message_handler(callback: OnDelivery) -> Callable[[Any], None]:
    """A py-amqp consumer callback that hands ``callback`` each message as a
    :class:`~taskrpc.transport.base.Delivery` (used when :mod:`.inbound` is off)."""

    def on_message(message: Any) -> None:  # an amqp.Message (py-amqp reads them)
        properties, info = message.properties, message.delivery_info
        callback(
            Delivery(
                info["delivery_tag"],
                message.body or b"",  # py-amqp leaves an empty body as ""
                properties,
                properties.get("application_headers") or {},
                properties.get("content_type"),
                properties.get("content_encoding"),
                info["exchange"],
                info["routing_key"],
                info["redelivered"],
                info["consumer_tag"],
            )
        )

    return on_message


def never(message: Any) -> None:  # pragma: no cover - .inbound takes every delivery
    """The py-amqp callback of consumers whose deliveries :mod:`.inbound` reads."""
    raise AssertionError("py-amqp dispatched a delivery that .inbound should have read")
