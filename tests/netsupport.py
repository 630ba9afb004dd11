"""What the TLS and network-fault tests share: worker processes on any broker, and tallies."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from taskrpc.testing.broker import wait_for_consumers
from taskrpc.testing.plugin import in_ci
from taskrpc.testing.rabbitnode import rabbitmq_available

ROOT = Path(__file__).resolve().parent.parent


def require_rabbitmq() -> None:
    """Skip (fail in CI) when extra RabbitMQ nodes cannot be started here."""
    if not rabbitmq_available():
        message = "rabbitmq-server is not installed: cannot start an extra node"
        if in_ci():
            pytest.fail(f"{message}, and CI is set", pytrace=False)
        pytest.skip(message)


class Worker:
    """A ``taskrpc worker`` process serving ``tests.apps.sample`` with the given environment."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRPC_")}
        full_env.update(env, PYTHONPATH=str(ROOT))
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "taskrpc", "worker", "tests.apps.sample:app", *args],
                env=full_env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_consuming(self, check_url: str, queue: str, count: int = 1) -> None:
        """Wait until ``queue`` has ``count`` consumers, as seen through ``check_url``."""
        try:
            wait_for_consumers(check_url, queue, count=count, timeout=30)
        except TimeoutError:
            pytest.fail(f"worker did not start consuming:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class Tally:
    """How each call of a stream ended; printed as a small table."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, outcome: str, error: BaseException | None = None) -> None:
        with self._lock:
            self.counts[outcome] += 1
            if error is not None:
                self.errors[type(error).__name__] += 1

    def __getitem__(self, outcome: str) -> int:
        return self.counts[outcome]

    @property
    def made(self) -> int:
        return sum(self.counts.values())

    def table(self, title: str) -> str:
        rows = [("calls made", self.made), ("ok", self.counts["ok"])]
        rows += [(f"typed error: {name}", n) for name, n in sorted(self.errors.items())]
        rows += [
            ("wrong answer", self.counts["wrong"]),
            ("hung past deadline", self.counts["hung"]),
            ("lost results", self.counts["lost"]),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [title, "-" * len(title)]
        lines += [f"{name:<{width}}  {value:>6}" for name, value in rows]
        return "\n".join(lines)


def wait_until(condition, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it is true (return ``True``) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


class Call:
    """One call of a :class:`CallStream`: when it started and ended, and how."""

    __slots__ = ("started", "ended", "outcome", "pid", "error")

    def __init__(self, started: float) -> None:
        self.started = started
        self.ended = 0.0
        self.outcome = ""
        self.pid = 0
        self.error: BaseException | None = None


class CallStream:
    """Callers in threads, each calling ``echo_pid`` in a loop until stopped.

    Every call records when it started and ended, which worker answered (its pid), and
    its error if any; an answer carrying another call's value counts as ``"wrong"``.
    """

    def __init__(self, task, *, threads: int, deadline: float, pause: float) -> None:
        self.task = task
        self.deadline = deadline
        self.pause = pause
        self.calls: list[Call] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)
        ]
        self._lock = threading.Lock()

    def __enter__(self) -> CallStream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.deadline + 30)

    def _run(self, n: int) -> None:
        from taskrpc import TaskRPCError

        i = 0
        while not self._stop.is_set():
            i += 1
            value = f"{n}-{i}"
            call = Call(time.monotonic())
            try:
                pid, got = self.task.apply_async((value,), timeout=self.deadline).get(
                    timeout=self.deadline + 10
                )
                call.pid, call.outcome = pid, "ok" if got == value else "wrong"
            except TaskRPCError as exc:  # typed: allowed, if in time
                call.outcome, call.error = "typed", exc
            except Exception as exc:  # anything else is a bug
                call.outcome, call.error = "untyped", exc
            call.ended = time.monotonic()
            with self._lock:
                self.calls.append(call)
            self._stop.wait(self.pause)
