"""The asking side of the control plane: broadcast a command, collect the answers."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from kombu import Consumer, Exchange, Producer, Queue

from ..transport.legacy import connect_kombu as connect
from . import messages

if TYPE_CHECKING:
    from ..app import App

logger = logging.getLogger("taskrpc.control")


def broadcast(
    app: App,
    command: str,
    arguments: dict[str, Any] | None = None,
    *,
    timeout: float = 1.0,
    only_app: bool = True,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Send ``command`` to every live worker and return their answers.

    Parameters:
        app: Whose broker (and signing keys) to use.
        command: ``ping``, ``stats``, ``active``, ``registered``, ``queues`` or ``revoke``.
        arguments: The command's arguments (``revoke``: ``ids``, ``deadline``, ``terminate``).
        timeout: Seconds to collect answers; workers that answer later are missed.
        only_app: Ask only the workers of ``app.name``; else every worker on the broker.
        limit: Stop as soon as this many workers answered.

    Returns:
        One dict per answering worker: ``worker`` (``host:pid``), ``hostname``, ``pid``,
        ``command`` and ``result``, sorted by worker.

    Raises:
        BrokerError: The broker cannot be reached.

    Example:
        >>> for answer in broadcast(app, "ping"):  # doctest: +SKIP
        ...     print(answer["worker"])
    """
    correlation_id = os.urandom(16).hex()
    reply_queue = f"taskrpc.control.reply.{correlation_id[:16]}"
    data = {
        "command": command,
        "arguments": arguments or {},
        "app": app.name if only_app else None,
    }
    answers: dict[str, dict[str, Any]] = {}
    connection = connect(app.settings)
    try:
        channel = connection.channel()
        exchange = Exchange(messages.EXCHANGE, type="fanout", durable=False)
        exchange(channel).declare()
        queue = Queue(reply_queue, exclusive=True, auto_delete=True, durable=False)

        def on_answer(message: Any) -> None:
            answer = _read_answer(app, message, correlation_id, reply_queue)
            if answer is not None:
                answers[str(answer.get("worker"))] = answer

        with Consumer(channel, [queue], on_message=on_answer, no_ack=True):
            body, headers = messages.encode(
                app.codec,
                data,
                kind="control",
                correlation_id=correlation_id,
                reply_to=reply_queue,
                routing_key="",
            )
            Producer(channel).publish(
                body,
                exchange=messages.EXCHANGE,
                routing_key="",
                reply_to=reply_queue,
                correlation_id=correlation_id,
                content_type=messages.CONTENT_TYPE,
                content_encoding="utf-8",
                headers=headers,
                delivery_mode=1,
                expiration=max(timeout, 0.001),
            )
            _collect(connection, timeout, lambda: limit is not None and len(answers) >= limit)
    finally:
        connection.release()
    return [answers[key] for key in sorted(answers)]


def _collect(connection: Any, timeout: float, enough: Any) -> None:
    deadline = time.monotonic() + timeout
    while not enough():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            connection.drain_events(timeout=left)
        except TimeoutError:
            return


def _read_answer(
    app: App, message: Any, correlation_id: str, reply_queue: str
) -> dict[str, Any] | None:
    if message.properties.get("correlation_id") != correlation_id:
        return None
    try:
        return messages.decode(
            app.codec,
            message.body,
            message.headers or {},
            kind="control-reply",
            correlation_id=correlation_id,
            reply_to=None,
            routing_key=reply_queue,
        )
    except ValueError as exc:
        logger.warning("control plane: dropped an answer: %s", exc)
        return None
