"""``taskrpc beat``: send periodic requests, one leader at a time, no tick twice or lost.

Leadership. Every beat process consumes one queue declared with RabbitMQ's
``x-single-active-consumer``: the broker delivers its messages to one consumer at a
time. The queue holds a *token* message; the beat holding it (unacknowledged) leads.
When the leader dies its connection closes, the broker puts the token back and hands it
to the next consumer, which leads from then on. A beat that finds the queue empty adds a
token; a leader holding several merges them into one.

State. The token carries the schedule's state: for each entry, the last tick sent. On
each tick the leader, in one AMQP transaction, publishes the tick's requests, publishes
a new token with the new state and acknowledges the old one. Either all of that happens
or none of it: a leader killed mid-tick leaves the old token, whose state says the tick
was not sent, so its successor sends it; once committed, the new token says it was. A
new leader also sends the ticks that fell due while nobody led (at most
``Settings.beat_max_catch_up`` of them per entry).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ..client.base import RequestBuilder
from ..exceptions import AuthenticationFailed, ConfigurationError
from ..transport.legacy import connect_kombu as connect
from ..transport.legacy import declare_task_queues_on as declare_task_queues
from ..transport.legacy import is_virtual

if TYPE_CHECKING:
    from ..app import App
    from .entries import PeriodicEntry

logger = logging.getLogger("taskrpc.beat")

#: Header of a periodic request: the tick it was sent for (seconds since the epoch).
HEADER_TICK = "taskrpc-tick"

#: Longest the loop waits before looking at its schedule again (seconds).
MAX_WAIT = 1.0


class Beat:
    """Sends ``app``'s periodic requests while it leads; see the module docstring.

    Example:
        >>> Beat(app).run()  # blocks until stop()  # doctest: +SKIP
    """

    def __init__(self, app: App) -> None:
        if not app.periodic_tasks:
            raise ConfigurationError(f"{app!r} has no periodic tasks (@app.periodic)")
        self.app = app
        self.entries: list[PeriodicEntry] = list(app.periodic_tasks.values())
        self.lock_queue = app.settings.beat_queue or f"taskrpc.beat.{app.name}"
        self._builder = RequestBuilder(app)
        self._held: list[tuple[int, dict[str, float]]] = []
        self._leading = False
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Stop; the token goes back to the queue for another beat. Safe from signals."""
        self._stopping.set()

    @property
    def leading(self) -> bool:
        """Whether this beat holds the token."""
        return bool(self._held)

    def run(self) -> None:
        """Serve until :meth:`stop`, reconnecting after a lost connection.

        Raises:
            BrokerError: The broker cannot be reached at start.
            ConfigurationError: The broker is an in-process one (no single active consumer).
        """
        first = True
        while not self._stopping.is_set():
            try:
                connection = connect(self.app.settings)
            except Exception as exc:
                if first or isinstance(exc, AuthenticationFailed):
                    raise
                logger.warning("beat: cannot reconnect; retrying", exc_info=True)
                self._stopping.wait(self.app.connect_retry.delay(1))
                continue
            first = False
            try:
                self._serve(connection)
            except (OSError, *connection.connection_errors) as exc:
                logger.warning("beat: lost the broker connection (%s); reconnecting", exc)
            finally:
                self._held, self._leading = [], False
                try:
                    connection.release()
                except Exception:
                    pass

    def _serve(self, connection: Any) -> None:
        if is_virtual(connection):
            raise ConfigurationError("taskrpc beat needs RabbitMQ (a single active consumer)")
        channel = connection.channel()
        queues = sorted({self._queue_of(entry) for entry in self.entries})
        declare_task_queues(channel, self.app.settings, queues)
        _, ready, _ = channel.queue_declare(
            self.lock_queue,
            durable=True,
            auto_delete=False,
            arguments={"x-single-active-consumer": True},
        )
        if ready == 0:  # no token waiting: add one (a leader merges any extra)
            self._publish_token(channel, {})
        channel.tx_select()
        channel.basic_qos(0, 0, False)
        channel.basic_consume(self.lock_queue, callback=self._on_token)
        logger.info("beat: %d periodic entries; waiting to lead", len(self.entries))
        while not self._stopping.is_set():
            wait = self._tick(channel) if self._held else MAX_WAIT
            try:
                connection.drain_events(timeout=max(0.001, min(wait, MAX_WAIT)))
            except TimeoutError:  # socket.timeout
                pass

    def _on_token(self, message: Any) -> None:
        try:
            state = {str(k): float(v) for k, v in json.loads(message.body).items()}
        except (ValueError, TypeError, AttributeError):
            state = {}  # a foreign message: merge nothing from it, ack it with the rest
        self._held.append((message.delivery_info["delivery_tag"], state))
        if not self._leading:
            self._leading = True
            logger.info("beat: leading (holding the token of %s)", self.lock_queue)

    def _tick(self, channel: Any) -> float:
        """Send what is due; return the seconds until the next tick."""
        state: dict[str, float] = {}
        for _, held in self._held:
            for name, last in held.items():
                state[name] = max(last, state.get(name, last))
        now = time.time()
        sent = 0
        for entry in self.entries:
            if entry.name not in state:
                state[entry.name] = now  # a new entry starts with the next tick
                continue
            sent += self._send_due(channel, entry, state, now)
        if sent or len(self._held) > 1 or set(state) - set(self._held[0][1]):
            self._publish_token(channel, state)
            acked = [tag for tag, _ in self._held]
            for tag in acked:
                channel.basic_ack(tag)
            channel.tx_commit()  # the requests, the new token and the acks: all or none
            # The new token comes back to us, maybe while the commit waited for its answer.
            self._held = [held for held in self._held if held[0] not in acked]
            return 0.0
        waits = [e.schedule.next_after(state[e.name]) - now for e in self.entries]
        return max(0.0, min(waits))

    def _send_due(
        self, channel: Any, entry: PeriodicEntry, state: dict[str, float], now: float
    ) -> int:
        limit = self.app.settings.beat_max_catch_up
        ticks = []
        tick = entry.schedule.next_after(state[entry.name])
        while tick <= now:
            ticks.append(tick)
            tick = entry.schedule.next_after(tick)
        if len(ticks) > limit:
            logger.warning(
                "beat: %s missed %d ticks while no beat led; sending the last %d",
                entry.name,
                len(ticks),
                limit,
            )
            ticks = ticks[-limit:]
        for tick in ticks:
            self._publish_request(channel, entry, tick)
            state[entry.name] = tick
        return len(ticks)

    def _publish_request(self, channel: Any, entry: PeriodicEntry, tick: float) -> None:
        import amqp

        request_id = hashlib.sha256(f"{entry.name}@{tick!r}".encode()).hexdigest()[:32]
        request = self._builder.build(
            entry.task,
            entry.args,
            entry.kwargs,
            reply_to=None,
            queue=self._queue_of(entry),
            timeout=None,
            request_id=request_id,
        )
        # The tick is a taskrpc-* header: in the headers before they are signed.
        request = dataclasses.replace(
            request, base_headers={**request.base_headers, HEADER_TICK: tick}
        )
        left = request.deadline - time.monotonic()
        expiration = max(1, int(left * 1000)) if request.expires else None
        message = amqp.Message(request.body, **request.amqp_properties("", expiration))
        exchange, routing_key = request.route(self.app.settings.exchange)
        channel.basic_publish(message, exchange, routing_key)
        logger.info("beat: sent %s for the tick of %s", entry.name, time.ctime(tick))

    def _queue_of(self, entry: PeriodicEntry) -> str:
        return entry.queue or self.app.settings.default_queue

    def _publish_token(self, channel: Any, state: dict[str, float]) -> None:
        import amqp

        token = amqp.Message(
            json.dumps(state).encode(), content_type="application/json", delivery_mode=2
        )
        channel.basic_publish(token, "", self.lock_queue)
