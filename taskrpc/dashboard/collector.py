"""What the dashboard shows, gathered from the control plane every few seconds.

:class:`Collector` asks every live worker for its ``stats`` and ``queues`` and folds the
answers into one snapshot: workers, queues with rates, tasks with call and error rates
and latency percentiles (with a short history for the chart), and the last failures.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ..control import broadcast
from ..control.state import percentiles

if TYPE_CHECKING:
    from ..app import App

logger = logging.getLogger("taskrpc.dashboard")

#: Points of history kept per task for the latency chart.
HISTORY = 60
#: A worker not heard from for this long (seconds) is dropped from the list.
FORGET_AFTER = 300.0
#: Failures shown.
FAILURES = 20


class Collector:
    """Polls the workers of ``app`` (of every app if ``only_app`` is false)."""

    def __init__(self, app: App, *, interval: float = 2.0, only_app: bool = True) -> None:
        self.app = app
        self.interval = interval
        self.only_app = only_app
        self.snapshot: dict[str, Any] = {
            "time": time.time(),
            "workers": [],
            "queues": [],
            "tasks": [],
            "failures": [],
            "version": 0,
        }
        self._seen: dict[str, dict[str, Any]] = {}
        self._previous: dict[str, tuple[float, float]] = {}
        self._history: dict[str, collections.deque[dict[str, Any]]] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="taskrpc-dashboard", daemon=True)
        self.changed = threading.Condition()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.is_set():
            started = time.monotonic()
            try:
                self.poll()
            except Exception as exc:  # the broker is away: show the last state, try again
                logger.warning("dashboard: cannot reach the workers: %s", exc)
            self._stopped.wait(max(0.1, self.interval - (time.monotonic() - started)))

    def poll(self) -> dict[str, Any]:
        """Ask the workers once and update ``snapshot`` (also returned)."""
        wait = min(1.0, self.interval / 2)
        stats = broadcast(
            self.app, "stats", {"samples": True}, timeout=wait, only_app=self.only_app
        )
        queues = broadcast(self.app, "queues", timeout=wait / 2, only_app=self.only_app)
        now = time.time()
        snapshot = {
            "time": now,
            "app": self.app.name if self.only_app else None,
            "workers": self._workers(stats, now),
            "queues": self._queues(queues, stats, now),
            "tasks": self._tasks(stats, now),
            "failures": _failures(stats),
            "version": self.snapshot["version"] + 1,
        }
        with self.changed:
            self.snapshot = snapshot
            self.changed.notify_all()
        return snapshot

    def _workers(self, answers: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        for answer in answers:
            r = answer["result"]
            self._seen[answer["worker"]] = {
                "id": answer["worker"],
                "hostname": r.get("hostname"),
                "pid": r.get("pid"),
                "app": r.get("app"),
                "pool": r.get("pool"),
                "concurrency": r.get("concurrency"),
                "busy": r.get("busy"),
                "uptime": r.get("uptime"),
                "state": r.get("state"),
                "total": r.get("total"),
                "seen": now,
            }
        answered = {a["worker"] for a in answers}
        workers = []
        for key, worker in sorted(self._seen.items()):
            if now - worker["seen"] > FORGET_AFTER:
                del self._seen[key]
                continue
            workers.append({**worker, "state": worker["state"] if key in answered else "offline"})
        return workers

    def _rate(self, key: str, total: float, now: float, clamp: bool = True) -> float | None:
        """Change of ``total`` per second since the last poll (``None`` the first time)."""
        previous = self._previous.get(key)
        self._previous[key] = (total, now)
        if previous is None or now <= previous[1]:
            return None
        rate = float((total - previous[0]) / (now - previous[1]))
        return max(0.0, rate) if clamp else rate

    def _queues(
        self, answers: list[dict[str, Any]], stats: list[dict[str, Any]], now: float
    ) -> list[dict[str, Any]]:
        depth = {item["queue"]: item for answer in answers for item in answer["result"]}
        answered: collections.Counter[str] = collections.Counter()
        for answer in stats:
            answered.update(answer["result"].get("answered_per_queue", {}))
        out = []
        for name in sorted(depth):
            item = depth[name]
            messages = item.get("messages") or 0
            rate_out = self._rate(f"queue-out:{name}", answered[name], now)
            growth = self._rate(f"queue-depth:{name}", messages, now, clamp=False)
            rate_in = None if rate_out is None or growth is None else max(0.0, rate_out + growth)
            out.append(
                {
                    "queue": name,
                    "messages": item.get("messages"),
                    "consumers": item.get("consumers"),
                    "rate_in": rate_in,
                    "rate_out": rate_out,
                    "error": item.get("error"),
                }
            )
        return out

    def _tasks(self, answers: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for answer in answers:
            for name, counts in answer["result"].get("tasks", {}).items():
                into = merged.setdefault(
                    name,
                    {
                        "task": name,
                        "received": 0,
                        "succeeded": 0,
                        "failed": 0,
                        "refused": 0,
                        "samples": [],
                    },
                )
                for key in ("received", "succeeded", "failed", "refused"):
                    into[key] += counts.get(key, 0)
                into["samples"] += counts.get("samples", [])
        tasks = []
        for name in sorted(merged):
            item = merged.pop(name)
            samples = item.pop("samples")
            rate = self._rate(f"task:{name}", item["received"], now)
            errors = self._rate(f"task-errors:{name}", item["failed"] + item["refused"], now)
            latency = percentiles(samples)
            point = {"time": now, **latency, "rate": rate}
            history = self._history.setdefault(name, collections.deque(maxlen=HISTORY))
            history.append(point)
            tasks.append(
                {
                    **item,
                    "rate": rate,
                    "error_rate": (errors / rate) if rate and errors is not None else 0.0,
                    "latency": latency,
                    "history": list(history),
                }
            )
        return tasks


def _failures(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    failures = [
        {**failure, "worker": answer["worker"]}
        for answer in answers
        for failure in answer["result"].get("failures", [])
    ]
    failures.sort(key=lambda f: f.get("time") or 0, reverse=True)
    return failures[:FAILURES]
