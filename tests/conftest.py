"""Shared fixtures. The broker fixtures (``broker_url``, ``rpc_app``, ...) come from
taskrpc's own pytest plugin, loaded through its ``pytest11`` entry point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from taskrpc.testing.broker import wait_for_consumers

ROOT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    """A ``taskrpc worker`` subprocess and its log."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def spawn_worker(
    broker_url: str, unique_queue: str, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """``spawn_worker(*cli_args, app=..., queue=...)``: a real worker process, consuming."""
    workers: list[WorkerProcess] = []

    def spawn(
        *args: str, app: str = "tests.apps.sample:app", queue: str | None = None, wait: bool = True
    ) -> WorkerProcess:
        queue = queue or unique_queue
        env = {
            **os.environ,
            "TASKRPC_BROKER_URL": broker_url,
            "TASKRPC_DEFAULT_QUEUE": queue,
            "PYTHONPATH": str(ROOT),
        }
        log = tmp_path / f"worker-{len(workers)}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "taskrpc", "worker", app, "--loglevel", "info", *args],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        worker = WorkerProcess(process, log)
        workers.append(worker)
        if wait:
            running = sum(1 for w in workers if w.process.poll() is None)
            try:
                wait_for_consumers(broker_url, queue, count=running)
            except TimeoutError:
                pytest.fail(f"worker did not start:\n{worker.output()}")
        return worker

    yield spawn
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(10)
