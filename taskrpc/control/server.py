"""The worker's side of the control plane: a thread with a connection of its own.

It binds an exclusive, auto-deleted queue to the fanout exchange
:data:`~taskrpc.control.messages.EXCHANGE` and answers each command at its ``reply_to``.
Being its own thread on its own connection, it answers while the pool (even the solo
pool, in the worker's loop) is busy with CPU-bound tasks: the interpreter switches
threads every few milliseconds.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any

from kombu import Consumer, Exchange, Producer, Queue

from ..transport.legacy import connect_kombu as connect
from . import messages
from .state import WorkerState

if TYPE_CHECKING:
    from ..worker import Worker

logger = logging.getLogger("taskrpc.control")

#: Seconds between reconnection attempts after the control connection fails.
RECONNECT_DELAY = 2.0


class ControlServer:
    """Answers control commands for one worker; :meth:`start` and :meth:`stop` it."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.app = worker.app
        #: The hooks that keep the worker's state (the worker adds them to its loop).
        self.observer = WorkerState(worker)
        self.queue_name = (
            f"taskrpc.control.{self.observer.hostname}.{self.observer.pid}.{uuid.uuid4().hex[:8]}"
        )
        self.ready = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="taskrpc-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                connection = connect(self.app.settings)
            except Exception as exc:
                logger.warning("control plane: %s; retrying", exc)
                self._stopped.wait(RECONNECT_DELAY)
                continue
            try:
                self._serve(connection)
            except Exception as exc:
                if not self._stopped.is_set():
                    logger.warning("control plane connection lost (%s); reconnecting", exc)
                    self._stopped.wait(RECONNECT_DELAY)
            finally:
                self.ready.clear()
                try:
                    connection.release()
                except Exception:
                    pass

    def _serve(self, connection: Any) -> None:
        channel = connection.channel()
        exchange = Exchange(messages.EXCHANGE, type="fanout", durable=False)
        queue = Queue(
            self.queue_name,
            exchange,
            exclusive=True,
            auto_delete=True,
            durable=False,
            max_length=100,
        )
        self._producer = Producer(connection.channel())
        self._connection = connection
        consumer = Consumer(channel, [queue], on_message=self._on_message, no_ack=True)
        with consumer:
            self.ready.set()
            while not self._stopped.is_set():
                try:
                    connection.drain_events(timeout=0.5)
                except TimeoutError:
                    connection.heartbeat_check()

    def _on_message(self, message: Any) -> None:
        properties = message.properties
        reply_to, correlation_id = properties.get("reply_to"), properties.get("correlation_id")
        try:
            data = messages.decode(
                self.app.codec,
                message.body,
                message.headers or {},
                kind="control",
                correlation_id=correlation_id,
                reply_to=reply_to,
                routing_key="",
            )
        except ValueError as exc:
            logger.warning("control plane: dropped a command: %s", exc)
            return
        wanted = data.get("app")
        if wanted is not None and wanted != self.app.name:
            return
        command = data.get("command")
        arguments = data.get("arguments") if isinstance(data.get("arguments"), dict) else {}
        try:
            result = self.handle(str(command), arguments or {})
        except Exception as exc:
            logger.exception("control command %r failed", command)
            result = {"error": f"{type(exc).__name__}: {exc}"}
        if reply_to and correlation_id:
            self._answer(str(reply_to), str(correlation_id), str(command), result)

    def _answer(self, reply_to: str, correlation_id: str, command: str, result: Any) -> None:
        state = self.observer
        data = {
            "worker": f"{state.hostname}:{state.pid}",
            "hostname": state.hostname,
            "pid": state.pid,
            "command": command,
            "result": result,
        }
        body, headers = messages.encode(
            self.app.codec,
            data,
            kind="control-reply",
            correlation_id=correlation_id,
            reply_to=None,
            routing_key=reply_to,
        )
        self._producer.publish(
            body,
            exchange="",
            routing_key=reply_to,
            correlation_id=correlation_id,
            content_type=messages.CONTENT_TYPE,
            content_encoding="utf-8",
            headers=headers,
            delivery_mode=1,
            expiration=60,
        )

    def handle(self, command: str, arguments: dict[str, Any]) -> Any:
        """The answer to one command."""
        state = self.observer
        if command == "ping":
            return {"pong": True, **state.identity()}
        if command == "stats":
            return state.stats(samples=bool(arguments.get("samples")))
        if command == "active":
            return state.active()
        if command == "registered":
            return registered(self.worker)
        if command == "queues":
            return self._queue_depths()
        if command == "revoke":
            return self._revoke(arguments)
        return {"error": f"unknown command {command!r}"}

    def _revoke(self, arguments: dict[str, Any]) -> dict[str, Any]:
        ids = [str(i) for i in arguments.get("ids") or [] if isinstance(i, (str, int))]
        deadline = arguments.get("deadline")
        deadline = float(deadline) if isinstance(deadline, (int, float)) else None
        self.observer.revoke(ids, deadline)
        running = [i for i in ids if self.observer.running(i)]
        interrupted: list[str] = []
        if arguments.get("terminate") and running:
            interrupt = getattr(self.worker.pool, "interrupt", None)
            if interrupt is not None:
                interrupted = [i for i in running if interrupt(i)]
        logger.info("revoked %d request(s); %d running", len(ids), len(running))
        return {"revoked": ids, "running": running, "interrupted": interrupted}

    def _queue_depths(self) -> list[dict[str, Any]]:
        """Depth and consumers of each queue this worker serves (passive declares)."""
        depths: list[dict[str, Any]] = []
        channel = self._connection.channel()
        try:
            for name in self.worker.queues:
                try:
                    _, messages_ready, consumers = channel.queue_declare(name, passive=True)
                except Exception as exc:  # missing: the broker closed the channel
                    depths.append({"queue": name, "error": str(exc)[:200]})
                    channel = self._connection.channel()
                    continue
                depths.append({"queue": name, "messages": messages_ready, "consumers": consumers})
        finally:
            try:
                channel.close()
            except Exception:
                pass
        return depths


def registered(worker: Worker) -> list[dict[str, Any]]:
    """The worker's tasks with their queues and argument schemas."""
    tasks = []
    for name, task in sorted(worker.app.tasks.items()):
        if task.queue not in worker.queues:
            continue
        tasks.append({"task": name, "queue": task.queue, "schema": _schema(task)})
    return tasks


def _schema(task: Any) -> Any:
    model = getattr(task.signature, "_model", None)
    try:
        return model.model_json_schema() if model is not None else None
    except Exception:  # a type pydantic cannot describe
        return None
