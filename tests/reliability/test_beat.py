"""taskrpc beat: two beat processes, one leading; kill the leader and the other takes
over, no tick sent twice and none lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import amqp
import pytest

from taskrpc.beat.service import HEADER_TICK
from taskrpc.testing.plugin import delete_queues

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 0.5  # tests/apps/jobs.py: heartbeat, every 0.5 s


class BeatProcess:
    def __init__(self, broker_url: str, queue: str, lock: str, log: Path) -> None:
        env = {
            **os.environ,
            "TASKRPC_BROKER_URL": broker_url,
            "TASKRPC_DEFAULT_QUEUE": queue,
            "TASKRPC_BEAT_QUEUE": lock,
            "PYTHONPATH": str(ROOT),
        }
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "taskrpc", "beat", "tests.apps.jobs:app"],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def leading(self) -> bool:
        return "beat: leading" in self.output()


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _ticks(broker_url: str, queue: str) -> list[float]:
    connection = amqp.Connection(broker_url.split("//")[1].split("@")[-1].rstrip("/"))
    connection.connect()
    try:
        channel = connection.channel()
        ticks = []
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            ticks.append(float(message.headers[HEADER_TICK]))
        return ticks
    finally:
        connection.close()


@pytest.mark.timeout(90)
def test_a_killed_leader_is_replaced_without_a_tick_twice_or_lost(
    broker_url: str, tmp_path: Path
):
    queue = f"taskrpc.test.beat.{uuid.uuid4().hex[:8]}"
    lock = f"{queue}.lock"
    beats = [BeatProcess(broker_url, queue, lock, tmp_path / f"beat-{n}.log") for n in (0, 1)]
    try:
        _wait(lambda: any(b.leading() for b in beats))
        leader, follower = beats if beats[0].leading() else beats[::-1]
        time.sleep(5 * INTERVAL)
        killed_at = time.time()
        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(10)
        _wait(follower.leading)
        time.sleep(5 * INTERVAL)
        follower.process.send_signal(signal.SIGTERM)
        assert follower.process.wait(20) == 0, follower.output()
        ticks = _ticks(broker_url, queue)
    finally:
        for beat in beats:
            if beat.process.poll() is None:
                beat.process.kill()
                beat.process.wait(10)
        delete_queues(broker_url, [queue, lock])
    assert len(ticks) == len(set(ticks)), f"a tick sent twice: {sorted(ticks)}"
    ticks.sort()
    gaps = [round(b - a, 6) for a, b in zip(ticks, ticks[1:], strict=False)]
    assert set(gaps) == {INTERVAL}, f"a tick lost: {gaps}"
    assert ticks[0] < killed_at < ticks[-1] and len(ticks) >= 8, leader.output() + follower.output()
    assert "beat: sent heartbeat" in leader.output() + follower.output()
