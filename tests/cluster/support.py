"""Helpers of the cluster fault tests: the cluster, a stream of calls, the fault table."""

from __future__ import annotations

import collections
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kombu import Connection

from taskrpc import App, Settings
from taskrpc.queues import queue_arguments
from taskrpc.testing.rabbitnode import RabbitNode

#: The cluster's first AMQP port: 5701 (this project's assignment), or another to run
#: beside a session that holds those (``TASKRPC_TEST_CLUSTER_PORT``; 5711 and up).
FIRST_PORT = int(os.environ.get("TASKRPC_TEST_CLUSTER_PORT", "5701"))
#: First ports tried, in turn, when nodes nobody owns hold the usual ones.
SPARE_PORTS = (5741, 5751, 5761)


def cluster_names(first: int) -> list[str]:
    """The nodes' names: ``taskrpc-c1..c3`` on 5701, suffixed with the port elsewhere."""
    return [f"taskrpc-c{i}" if first == 5701 else f"taskrpc-c{i}-{first}" for i in (1, 2, 3)]


#: Heartbeat of every client and worker in these tests (seconds): a lost node is noticed
#: within a few seconds even when its socket does not close.
HEARTBEAT = "2"


class Cluster:
    """The three nodes, and what the tests ask of them."""

    def __init__(self, nodes: list[RabbitNode]) -> None:
        self.nodes = nodes

    def urls(self, *first: int) -> str:
        """A ``;``-separated URL list of every node, the given indexes first."""
        order = [*first, *(i for i in range(len(self.nodes)) if i not in first)]
        return ";".join(self.nodes[i].url for i in order)

    def running(self) -> list[RabbitNode]:
        return [node for node in self.nodes if node.running]

    def heal(self, timeout: float = 120.0) -> None:
        """Start every stopped node and wait until all three run as one cluster."""
        for node in self.nodes:
            if not node.running:
                node.start(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.running_nodes()) == len(self.nodes):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the cluster did not heal: running {self.running_nodes()}")

    def running_nodes(self) -> list[str]:
        """Node names the cluster reports running, asked of a live node."""
        for node in self.running():
            try:
                status = json.loads(node.ctl("cluster_status", "--formatter", "json"))
            except (RuntimeError, ValueError):
                continue
            return list(status.get("running_nodes", []))
        return []

    def leader(self, queue: str) -> RabbitNode:
        """The node leading quorum queue ``queue``."""
        for node in self.running():
            try:
                rows = json.loads(
                    node.ctl("list_queues", "name", "leader", "--formatter", "json", "--quiet")
                )
            except (RuntimeError, ValueError):
                continue
            for row in rows:
                if row.get("name") == queue:
                    return next(n for n in self.nodes if n.nodename == row["leader"])
        raise LookupError(f"no leader found for {queue!r}")

    def node(self, nodename: str) -> RabbitNode:
        return next(n for n in self.nodes if n.nodename == nodename)


def quorum_env(urls: str, queue: str, dead: str) -> dict[str, str]:
    """``TASKRPC_*`` settings of a quorum deployment on the cluster."""
    return {
        "TASKRPC_BROKER_URL": urls,
        "TASKRPC_DEFAULT_QUEUE": queue,
        "TASKRPC_QUEUE_TYPE": "quorum",
        "TASKRPC_DELIVERY_LIMIT": "5",
        "TASKRPC_DEAD_LETTER_QUEUE": dead,
        "TASKRPC_BROKER_HEARTBEAT": HEARTBEAT,
        "TASKRPC_CONNECT_TIMEOUT": "3",
    }


def app_for(env: dict[str, str], **options: Any) -> App:
    """A client app with ``env``'s settings."""
    return App("cluster-client", settings=Settings.from_env(env), **options)


def declare_on(node: RabbitNode, env: dict[str, str]) -> None:
    """Declare the task queue on ``node`` first, so that ``node`` leads it."""
    settings = Settings.from_env(env)
    queue = settings.default_queue
    with Connection(node.url, connect_timeout=5) as connection:
        connection.default_channel.queue_declare(
            queue, durable=True, auto_delete=False, arguments=queue_arguments(settings, queue)
        )


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


@dataclass
class Tally:
    """What a stream of calls ended as."""

    calls: int = 0
    exact: int = 0
    wrong: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    hung: int = 0
    idempotent_failed: int = 0
    executions: dict[str, collections.Counter[int]] = field(default_factory=dict)
    seconds: float = 0.0
    #: Longest gap between two successful replies (seconds).
    longest_gap: float = 0.0
    #: When the fault was injected (``time.monotonic()``), and the first success after it.
    fault_at: float | None = None
    recovered_at: float | None = None

    def duplicates(self, kind: str) -> int:
        counts = self.executions.get(kind, collections.Counter())
        return sum(c - 1 for c in counts.values() if c > 1)

    def recovery(self) -> str:
        if self.fault_at is None or self.recovered_at is None:
            return "n/a"
        return f"{self.recovered_at - self.fault_at:.2f}"

    def rows(self) -> list[tuple[str, object]]:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"
        return [
            ("calls made", self.calls),
            ("exact results", self.exact),
            ("wrong results", self.wrong),
            ("typed errors by type", errors),
            ("idempotent calls that failed", self.idempotent_failed),
            ("hung past their deadline", self.hung),
            ("duplicate replies delivered to callers", self.wrong),
            ("duplicate executions (idempotent task)", self.duplicates("idempotent")),
            ("duplicate executions (other task)", self.duplicates("other")),
            ("longest gap between replies (s)", f"{self.longest_gap:.2f}"),
            ("first success after the fault (s)", self.recovery()),
            ("wall time (s)", f"{self.seconds:.1f}"),
        ]


def stream(
    app: App,
    markers: Path,
    count: int,
    *,
    timeout: float = 15.0,
    window: int = 16,
    fault: tuple[int, Callable[[], None]] | None = None,
) -> Tally:
    """Make ``count`` calls, ``window`` at a time, alternating an idempotent task and
    another; each task appends its ``n`` to a marker file (one line per execution).

    ``fault``: ``(n, action)``: before call ``n``, with up to ``window`` calls in flight,
    run ``action`` (e.g. kill a node) and note the time."""
    tally = Tally(calls=count)
    files = {"idempotent": markers / "idempotent", "other": markers / "other"}
    pending: collections.deque[tuple[int, str, Any, float]] = collections.deque()
    started = last_ok = time.monotonic()

    def settle() -> None:
        nonlocal last_ok
        n, kind, result, sent = pending.popleft()
        try:
            value = result.get(timeout=timeout + 30)
        except Exception as exc:  # typed errors are what we count
            if time.monotonic() - sent > timeout + 5:
                tally.hung += 1
            tally.errors[type(exc).__name__] += 1
            tally.idempotent_failed += kind == "idempotent"
            return
        now = time.monotonic()
        if tally.fault_at is not None and tally.recovered_at is None and sent > tally.fault_at:
            tally.recovered_at = now
        tally.longest_gap = max(tally.longest_gap, now - last_ok)
        last_ok = now
        if value == n:
            tally.exact += 1
        else:
            tally.wrong += 1

    for n in range(count):
        if fault is not None and n == fault[0]:
            fault[1]()
            tally.fault_at = time.monotonic()
        kind = "idempotent" if n % 2 == 0 else "other"
        task = "count_idempotent" if kind == "idempotent" else "count"
        sent = time.monotonic()
        try:
            result = app.client.send(
                task, [str(files[kind]), n], timeout=timeout, idempotent=kind == "idempotent"
            )
        except Exception as exc:  # refused at once: a typed error too
            tally.errors[type(exc).__name__] += 1
            tally.idempotent_failed += kind == "idempotent"
            continue
        pending.append((n, kind, result, sent))
        while len(pending) >= window:
            settle()
    while pending:
        settle()
    tally.seconds = time.monotonic() - started
    for kind, path in files.items():
        lines = path.read_text().split() if path.exists() else []
        tally.executions[kind] = collections.Counter(int(x) for x in lines)
    return tally


def print_table(title: str, rows: list[tuple[str, object]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def after(seconds: float, action: Callable[[], None]) -> threading.Thread:
    """Run ``action`` in a thread after ``seconds``."""

    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
