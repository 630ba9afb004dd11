"""The client's I/O thread: one connection that publishes requests and consumes replies.

py-amqp connections are not thread-safe, so one lock guards every use of the connection.
A caller that finds the lock free publishes its request itself (no thread hand-off on
the way out); otherwise it puts the call in the outbox and wakes the thread, which
publishes everything queued. A caller that waits for its reply reads the socket itself
when no other caller does, so a round trip from one thread wakes no other thread; the
I/O thread reads replies for everyone else, routing them by correlation id.
Publisher confirms are handled asynchronously, so many calls can be in flight from one
thread without a round trip each; a request the broker returns (no queue bound) or
refuses fails its call at once.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import threading
import time
import uuid

from .. import delays
from ..exceptions import BrokerError, ConnectionLost, Unroutable
from ..policies import RetryPolicy
from ..queues import explain_refusal
from ..settings import Settings
from ..transport import Delivery, Returned, Transport, connect, declare_task_queues
from ..transport.direct_reply import DIRECT_REPLY_TO, learn_reply_to
from ..transport.nodes import BrokerNodes
from .replies import PendingCall, RawReply, ReplyRouter

logger = logging.getLogger("taskrpc.client")

#: Callback queues are named this plus a random hex string.
REPLY_QUEUE_PREFIX = "taskrpc.reply."

#: Seconds between the I/O thread's looks at an otherwise unwatched socket.
IDLE_CHECK = 1.0

#: Methods (replies, confirms) the I/O thread reads before it publishes what is queued.
DRAIN_LIMIT = 64


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:  # empty (non-blocking) or closed
        pass


class ReplyListener:
    """Owns the client's connection: publishes the outbox, routes every reply.

    The callback queue has a random name, is exclusive and auto-deleted: it lives exactly
    as long as the connection. With ``direct``, RabbitMQ's direct reply-to is used instead.
    With ``eager``, the I/O thread reads replies as they arrive (callers that never wait
    in a thread, as asyncio's); otherwise waiting callers read them (see :meth:`wait`).

    If the connection drops, calls that were never confirmed are published again (same
    id) once reconnected, up to ``publish_retry.max_retries`` times; confirmed calls of
    idempotent tasks are sent again up to ``resend.max_retries`` times; every other
    waiting call fails at once with :class:`ConnectionLost`, since its reply queue is gone.
    Reconnection backs off as ``connect_retry`` says and never gives up while open.
    """

    def __init__(
        self,
        settings: Settings,
        router: ReplyRouter,
        *,
        connect_retry: RetryPolicy,
        publish_retry: RetryPolicy,
        resend: RetryPolicy,
        direct: bool = False,
        eager: bool = False,
    ) -> None:
        self._settings = settings
        self._nodes = BrokerNodes(settings.broker_url, settings.broker_failover_strategy)
        self._router = router
        self._connect_retry = connect_retry
        self._publish_retry = publish_retry
        self._resend = resend
        self._direct = direct
        self._eager = eager
        self._followers = 0  # callers waiting on their event instead of reading
        self._followers_lock = threading.Lock()
        self._outbox: collections.deque[PendingCall] = collections.deque()
        self._unconfirmed: dict[int, PendingCall] = {}
        self._returned: dict[str, str] = {}
        self._io_lock = threading.Lock()
        self._leader = threading.Lock()  # held by the one caller reading replies itself
        # Wakes the leader when the I/O thread read frames (perhaps the leader's reply).
        self._leader_r, self._leader_w = os.pipe()
        os.set_blocking(self._leader_r, False)
        os.set_blocking(self._leader_w, False)
        self._channel: Transport | None = None  # set while connected; used under the lock
        self._confirms = False
        self._declared: set[str] = set()
        self._ready = threading.Event()
        self._gave_up = threading.Event()  # set while retries are exhausted; calls fail fast
        self._stopping = False
        self._stopped = threading.Event()  # wakes the reconnection backoff at once
        self._pump: Transport | None = None
        self._thread = threading.Thread(target=self._run, name="taskrpc-client", daemon=True)
        #: Name of the current callback queue (every request's ``reply_to``).
        self.reply_to = ""
        #: Why the last connection attempt failed, for error messages.
        self.last_error = ""

    def start(self) -> None:
        """Start connecting in the background."""
        self._thread.start()

    def wait_ready(self, timeout: float) -> str:
        """Return the callback queue's name once it is consumed.

        Raises:
            BrokerError: No queue within ``timeout`` seconds, or the connection retry policy
                is exhausted (the thread keeps trying in the background).
        """
        deadline = time.monotonic() + timeout
        while not self._ready.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._gave_up.is_set():
                raise BrokerError(f"no connection to the broker: {self.last_error or 'timed out'}")
            self._ready.wait(min(left, 0.05))
        return self.reply_to

    @property
    def connected(self) -> bool:
        """Whether the callback queue is being consumed right now."""
        return self._ready.is_set()

    def submit(self, call: PendingCall) -> None:
        """Publish ``call`` (its ``request`` set) now if the connection is free, else queue
        it for the I/O thread; never waits for the broker."""
        if not self._outbox and self._io_lock.acquire(blocking=False):
            try:
                if self._channel is not None:
                    self._publish(call)
                    return
            except Exception:  # broken connection: the I/O thread finds out and resends
                pass
            finally:
                self._io_lock.release()
                # Declaring a new queue reads the socket: if that read a leader's reply,
                # the leader must look at its call again.
                if self._leader.locked():
                    self._wake_leader()
        self._outbox.append(call)
        pump = self._pump
        if pump is not None:
            pump.wake()

    def wait(self, call: PendingCall, timeout: float) -> bool:
        """Wait until ``call`` settles or ``timeout`` passes; return whether it settled.

        One waiting caller at a time reads the socket itself ("leader"), so its reply does
        not have to be handed over from the I/O thread; the others ("followers") wait on
        their event while the leader, or else the I/O thread, reads for them. With
        ``timeout=0`` this reads what has already arrived, without blocking.
        """
        pump = self._pump
        if call.done or pump is None:
            return call.wait(timeout)
        if not self._leader.acquire(blocking=False):
            return self._follow(call, timeout)
        deadline = time.monotonic() + timeout
        try:
            self._lead(call, pump, deadline)
        except Exception:  # the connection broke: the I/O thread deals with it
            pass
        finally:
            self._leader.release()
            if self._followers:
                pump.wake()  # someone still waits: the I/O thread reads for them now
        left = deadline - time.monotonic()
        if call.done or left <= 0:
            return call.done
        return self._follow(call, left)  # stopped or reconnected while leading

    def _lead(self, call: PendingCall, pump: Transport, deadline: float) -> None:
        sock = pump.fileno()

        def call_done() -> bool:
            return call.done

        while not call.done and not self._stopping:
            left = max(0.0, deadline - time.monotonic())
            if pump.buffered():
                left = 0.0  # frames already read wait to be parsed
            readable = select.select([sock, self._leader_r], [], [], left)[0]
            if pump.buffered() and sock not in readable:
                readable.append(sock)
            if self._leader_r in readable:
                _drain_pipe(self._leader_r)  # the I/O thread read something: look
            if sock in readable:
                with self._io_lock:
                    if self._pump is not pump:
                        return  # reconnected meanwhile: the I/O thread takes over
                    # Only until our reply is in: the caller may have more to publish.
                    pump.drain(until=call_done)
            elif left <= 0:
                return

    def _follow(self, call: PendingCall, timeout: float) -> bool:
        with self._followers_lock:
            self._followers += 1
        try:
            pump = self._pump
            if pump is not None and not self._leader.locked():
                pump.wake()  # nobody leads: have the I/O thread read
            return call.wait(timeout)
        finally:
            with self._followers_lock:
                self._followers -= 1

    def _wake_leader(self) -> None:
        try:
            os.write(self._leader_w, b"\0")
        except OSError:  # full (a wake-up is pending) or closed
            pass

    def stop(self) -> None:
        """Stop and close the connection (the callback queue goes with it)."""
        self._stopping = True
        self._stopped.set()
        pump = self._pump
        if pump is not None:
            pump.wake()
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout=5)
        self._wake_leader()

    def __del__(self) -> None:
        # Closed only when nothing can write to it any more (see the transport's Waker).
        for fd in (getattr(self, "_leader_r", -1), getattr(self, "_leader_w", -1)):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                self._serve()
                attempt = 0
            except BrokerError as exc:  # could not connect
                self.last_error = str(exc)
                if attempt >= self._connect_retry.max_retries:
                    self._gave_up.set()
            except Exception as exc:  # the connection broke under us
                if self._stopping:
                    return
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._ready.clear()
                self._nodes.lost()
                self._lose_connection()
            attempt += 1
            self._stopped.wait(self._connect_retry.delay(attempt))

    def _serve(self) -> None:
        channel = connect(self._settings, self._nodes)
        try:
            # A reply it cannot decode costs that message only, never the connection.
            channel.on_bad_delivery = lambda bad: self._router.drop_undecodable(bad.reason)
            # Before confirm mode: learning a direct reply-to name publishes a probe.
            reply_to = self._consume_replies(channel)
            channel.confirm_select()
            channel.on_confirm = self._on_confirm
            channel.on_return = self._on_return
            channel.declare_exchange(self._settings.exchange, "direct", durable=True)
            self.reply_to = reply_to
            self._pump = pump = channel
            self._declared = set()
            with self._io_lock:
                self._channel, self._confirms = channel, True
            self._gave_up.clear()
            self._ready.set()
            try:
                while not self._stopping:
                    self._turn(pump)
            finally:
                with self._io_lock:
                    self._channel = None
                self._pump = None
        finally:
            channel.close()

    def _turn(self, pump: Transport) -> None:
        """One pass of the I/O loop: wait, read what came, publish what is queued."""
        with self._io_lock:
            pump.heartbeat_check()
        # Read replies only for those who need it: an eager (asyncio) client, or callers
        # waiting while nobody leads. Otherwise the next caller to wait reads them itself,
        # and a sync caller's round trip involves no other thread.
        watch = (self._eager or self._followers > 0) and not self._leader.locked()
        idle = 0 if self._outbox else min(1.0 if watch else IDLE_CHECK, pump.heartbeat_due())
        readable = pump.poll(idle, watch_input=watch)
        if not watch and not self._leader.locked():
            # Now and then, and after a wake-up, read what nobody waits for: confirms,
            # stray replies, a closed connection.
            readable = pump.poll(0)
        with self._io_lock:
            busy = readable or bool(self._outbox)
            if readable:
                pump.drain(limit=DRAIN_LIMIT)  # then publish what waits meanwhile
            self._flush()  # declaring a queue reads the socket too
        if busy and self._leader.locked():  # we may have taken the leader's reply
            self._wake_leader()

    def _consume_replies(self, channel: Transport) -> str:
        if self._direct:
            name = DIRECT_REPLY_TO
        else:
            name = f"{REPLY_QUEUE_PREFIX}{uuid.uuid4().hex}"
            channel.declare_queue(name, exclusive=True, auto_delete=True, durable=False)
        channel.consume(name, self._on_reply, no_ack=True)
        if self._direct:  # requests name the channel's own address, which they sign
            name = learn_reply_to(channel, self._settings.connect_timeout)
        return name

    def _flush(self) -> None:  # with the lock held
        while self._outbox:
            self._publish(self._outbox.popleft())

    def _publish(self, call: PendingCall) -> None:  # with the lock held
        request, channel = call.request, self._channel
        assert channel is not None
        left = call.deadline - time.monotonic()
        if call.done or request is None or left <= 0:
            return  # failed, answered or timed out while it waited
        if request.queue not in self._declared:
            try:
                declare_task_queues(channel, self._settings, [request.queue])
            except channel.refusal_errors as exc:  # e.g. declared with other arguments
                hint = explain_refusal(str(exc))
                self._router.fail(
                    call,
                    BrokerError(f"cannot declare queue {request.queue!r}: {hint or exc}"),
                )
                raise  # the channel is closed: reconnect, without resending this call
            self._declared.add(request.queue)
        if not request.fire:
            request.properties["reply_to"] = self.reply_to
        exchange, routing_key = request.route(self._settings.exchange)
        delayed = exchange.startswith(delays.PREFIX)
        if delayed and delays.PREFIX not in self._declared:
            if not self._declare_cascade(channel, call):
                return
            exchange, routing_key = request.route(self._settings.exchange)  # time has passed
        if call.publishes and request.due is None:
            # A resend: the broker should drop it at the same deadline. (Never a delayed
            # one: an expiration would cut its stay in a level of the cascade short.)
            request.properties["expiration"] = str(max(1, int(left * 1000)))
        properties = {
            **request.properties,
            "content_type": request.content_type,
            "content_encoding": request.content_encoding,
            "application_headers": request.headers,  # signed here, reply_to included
        }
        call.publishes += 1
        sequence = channel.publish(request.body, properties, exchange, routing_key, mandatory=True)
        self._unconfirmed[sequence] = call  # confirms arrive only when we next read

    def _on_confirm(self, delivery_tag: int, multiple: bool, ack: bool) -> None:
        (self._on_ack if ack else self._on_nack)(delivery_tag, multiple)

    def _declare_cascade(self, channel: Transport, call: PendingCall) -> bool:
        """Declare the delay cascade, once per connection, before the first delayed call;
        whether it is there (if not, the call has failed)."""
        try:
            delays.declare_cascade(channel)
        except channel.refusal_errors as exc:
            self._router.fail(call, BrokerError(f"cannot declare the delay queues: {exc}"))
            raise  # the channel is closed: reconnect, without resending this call
        except NotImplementedError as exc:  # the in-process transport has no TTLs
            self._router.fail(call, BrokerError(f"delayed calls need RabbitMQ: {exc}"))
            return False
        self._declared.add(delays.PREFIX)
        return True

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        for call in self._settle_tags(delivery_tag, multiple):
            reason = self._returned.pop(call.id, None)
            if reason is None:
                self._confirmed(call)
            else:
                self._declared.discard(call.request.queue)  # declare it again next time
                self._router.fail(
                    call,
                    Unroutable(
                        f"no queue is bound for {call.task} on {call.request.queue!r} "
                        f"({reason}); was the queue deleted?"
                    ),
                )

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        for call in self._settle_tags(delivery_tag, multiple):
            if call.publishes <= self._publish_policy(call).max_retries:
                self._outbox.append(call)  # refused, so never queued: safe to send again
            else:
                self._router.fail(call, BrokerError(f"the broker refused {call.task} (nack)"))

    def _on_return(self, returned: Returned) -> None:
        correlation_id = returned.properties.get("correlation_id")
        if correlation_id:
            self._returned[correlation_id] = f"{returned.reply_code} {returned.reply_text}"

    def _settle_tags(self, delivery_tag: int, multiple: bool) -> list[PendingCall]:
        if not multiple:
            call = self._unconfirmed.pop(delivery_tag, None)
            return [] if call is None else [call]
        tags = [tag for tag in self._unconfirmed if tag <= delivery_tag]
        return [self._unconfirmed.pop(tag) for tag in tags]

    def _confirmed(self, call: PendingCall) -> None:
        call.confirmed = True
        if call.request is not None and call.request.fire:  # no reply will come: done
            self._router.discard(call.id)
            call.request = None
            call._settle(None, None)
            return
        if not call.resendable:
            call.request = None  # no resend will need it: let the body go

    def _lose_connection(self) -> None:
        self._unconfirmed.clear()
        self._returned.clear()
        self._outbox.clear()  # every call in it is also pending in the router
        error = ConnectionLost(f"reply queue lost ({self.last_error})")
        survivors = 0
        for call in self._router.take_all():
            if self._may_send_again(call):
                self._router.add(call)
                self._outbox.append(call)
                survivors += 1
            else:
                call._settle(None, error)
        self._wake_leader()  # it may be waiting on the dead socket for a call we just failed
        logger.warning(
            "client connection lost (%s); %d calls will be sent again once reconnected",
            self.last_error,
            survivors,
        )

    def _may_send_again(self, call: PendingCall) -> bool:
        if call.request is None or call.deadline <= time.monotonic():
            return False
        if not call.confirmed:  # never reached a queue, as far as we know: safe
            return call.publishes <= self._publish_policy(call).max_retries
        if call.resendable:  # idempotent: safe even if it ran
            call.resends += 1
            return call.resends <= self._resend.max_retries
        return False

    def _publish_policy(self, call: PendingCall) -> RetryPolicy:
        return call.publish_retry or self._publish_retry

    def _on_reply(self, message: Delivery) -> None:
        correlation_id = message.properties.get("correlation_id")
        reply = RawReply(
            message.body,
            message.content_type,
            message.content_encoding,
            message.headers,
            correlation_id,
            message.routing_key,
        )
        self._router.deliver(correlation_id, reply)
