"""What the example tests share: worker subprocesses, the client run, the environment.

Each example test starts ``python -m taskrpc worker`` on a queue of its own
(``TASKRPC_DEFAULT_QUEUE``), waits until the broker reports it as a consumer, runs the
example's client as another subprocess, and stops the workers with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from taskrpc.testing.broker import queue_state

#: The examples directory of this checkout.
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: Seconds a worker may take to import its app and start consuming.
WORKER_START_TIMEOUT = 20.0
#: Seconds a worker may take to exit after SIGTERM (it finishes the requests in hand).
WORKER_STOP_TIMEOUT = 15.0
#: Seconds any one client run may take.
CLIENT_TIMEOUT = 60.0


class WorkerProcess:
    """A ``taskrpc worker`` subprocess whose output goes to a log file."""

    def __init__(self, command: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = WORKER_STOP_TIMEOUT) -> int:
        """Wait for the exit; fail the test (killing the process) if it does not come."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            pytest.fail(f"worker {self.pid} still running after {timeout:g} s:\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM, then wait for the exit; return the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait()


#: ``start(app_path, cwd, *worker_options)`` -> a worker process, consuming already.
StartWorker = Callable[..., WorkerProcess]


def example_env(broker_url: str | None, queue: str) -> dict[str, str]:
    """The environment, minus any ``TASKRPC_*`` of ours, plus the queue (and the broker)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRPC_")}
    env["TASKRPC_DEFAULT_QUEUE"] = queue
    if broker_url is not None:
        env["TASKRPC_BROKER_URL"] = broker_url
    return env


def run(*command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python *command`` to completion, output captured."""
    return subprocess.run(
        [sys.executable, *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
    )


def shown(result: subprocess.CompletedProcess[str]) -> str:
    """A finished run, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"


def _wait_until_consuming(
    worker: WorkerProcess, broker_url: str, queue: str, consumers: int
) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while True:
        state = queue_state(broker_url, queue)
        if state is not None and state[1] >= consumers:
            return
        if worker.process.poll() is not None:
            pytest.fail(f"worker exited with {worker.process.returncode}:\n{worker.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"worker not consuming {queue!r}:\n{worker.output()}")
        time.sleep(0.05)


def worker_starter(
    broker_url: str, queue: str, tmp_path: Path, started: list[WorkerProcess]
) -> StartWorker:
    """``start(app_path, cwd, *worker_options)``: a worker on ``queue``, once consuming."""

    def start(app_path: str, cwd: Path, *options: str) -> WorkerProcess:
        command = [sys.executable, "-m", "taskrpc", "worker", app_path, *options]
        log = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(command, cwd=cwd, env=example_env(broker_url, queue), log=log)
        started.append(worker)
        running = sum(1 for w in started if w.process.poll() is None)
        _wait_until_consuming(worker, broker_url, queue, running)
        return worker

    return start
