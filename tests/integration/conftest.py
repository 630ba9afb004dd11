"""Fixtures of the integration tests (the broker fixtures come from taskrpc's plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .examples_support import StartWorker, WorkerProcess, worker_starter


@pytest.fixture
def start_worker_process(
    broker_url: str, unique_queue: str, tmp_path: Path
) -> Iterator[StartWorker]:
    """Start ``taskrpc worker`` processes on ``unique_queue``; each returns once consuming."""
    started: list[WorkerProcess] = []
    yield worker_starter(broker_url, unique_queue, tmp_path, started)
    for worker in started:  # a failed test may leave some running
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(timeout=5)
