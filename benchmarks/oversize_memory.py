"""Worker memory while bodies far over the size limit are published at it.

    python benchmarks/oversize_memory.py [--bodies 8] [--size-mb 120] [--broker URL]

Starts a real ``taskrpc worker`` (``taskrpc.benchmarking.tasks:app``, threads pool, 2 at
once, the default 4 MiB ``max_message_size``) on a queue of its own, publishes the
bodies with plain py-amqp (publisher confirms on, so a broker that refuses them says
so), samples the worker's resident memory every few milliseconds while they arrive, and
prints: its RSS before, the highest sampled and the kernel's high-water mark
(``VmHWM``), how many deliveries it rejected as ``PayloadTooLarge`` and how many refusals
reached the caller, and whether a good call still answers afterwards.

The broker must accept the bodies: RabbitMQ refuses a message over its own
``max_message_size`` (128 MiB by default up to 3.13, 16 MiB from 4.0) by closing the
publisher's channel, and the script stops there and says so.

Before taskrpc read deliveries frame by frame, 8 bodies of 120 MB took a worker to 589 MB.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import amqp
from kombu import Connection

from taskrpc import App
from taskrpc.benchmarking.tasks import TASK_NAME
from taskrpc.testing.broker import wait_for_consumers

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672//"


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of process ``pid`` from ``/proc`` (``VmRSS``, ``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


class Sampler(threading.Thread):
    """Samples a process's RSS every ``period`` seconds, keeping the highest."""

    def __init__(self, pid: int, period: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.peak = 0.0
        self.samples = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, LookupError):
                return  # the process is gone
            self.samples += 1
            time.sleep(self.period)


def start_worker(url: str, queue: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TASKRPC_BROKER_URL": url, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskrpc", "worker", "taskrpc.benchmarking.tasks:app",
             "-Q", queue, "-c", "2", "-l", "info", "--no-control"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    wait_for_consumers(url, queue, timeout=30)
    return process


class Publisher:
    """Plain py-amqp (under kombu's connection), publisher confirms on, and a reply queue
    of its own where the worker's refusals arrive."""

    def __init__(self, url: str) -> None:
        self.connection = Connection(url, connect_timeout=10)
        self.connection.connect()
        raw: amqp.Connection = self.connection.connection  # the py-amqp connection itself
        self.channel = raw.channel()
        self.channel.confirm_select()
        self.reply_queue, _, _ = self.channel.queue_declare("", exclusive=True)

    def publish(self, queue: str, body: bytes) -> None:
        """Publish one request for the benchmark task; wait for the broker's confirm.

        Raises:
            amqp.exceptions.AMQPError: The broker refused it (closing the channel).
        """
        message = amqp.Message(
            body,
            content_type="application/json",
            correlation_id=uuid.uuid4().hex,
            reply_to=self.reply_queue,
            application_headers={"taskrpc-protocol": 1, "taskrpc-task": TASK_NAME},
        )
        self.channel.basic_publish(message, "", queue, confirm_timeout=300)

    def replies(self, expected: int, timeout: float) -> list[bytes]:
        """Bodies of up to ``expected`` replies, waiting at most ``timeout`` seconds."""
        replies: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(replies) < expected and time.monotonic() < deadline:
            message = self.channel.basic_get(self.reply_queue, no_ack=True)
            if message is None:
                time.sleep(0.05)
            else:
                replies.append(bytes(message.body))
        return replies

    def close(self) -> None:
        self.connection.release()


def delete_queue(url: str, queue: str) -> None:
    with Connection(url, connect_timeout=10) as connection:
        connection.default_channel.queue_delete(queue)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bodies", type=int, default=8, help="how many (8)")
    parser.add_argument("--size-mb", type=float, default=120.0, help="MB (10**6 B) each (120)")
    parser.add_argument("--broker", default=os.environ.get("TASKRPC_BROKER_URL", DEFAULT_URL))
    options = parser.parse_args()
    size = int(options.size_mb * 1_000_000)
    queue = f"taskrpc.bench.oversize.{uuid.uuid4().hex[:8]}"
    scratch = tempfile.TemporaryDirectory()
    log = Path(scratch.name) / "worker.log"
    worker = start_worker(options.broker, queue, log)
    client = App("oversize", broker_url=options.broker, default_queue=queue)
    publisher = Publisher(options.broker)
    try:
        assert client.send_task(TASK_NAME, [10]).get(timeout=30) == 55  # warm, and working
        before = rss_mb(worker.pid)
        sampler = Sampler(worker.pid)
        sampler.start()
        started = time.monotonic()
        body = b"x" * size
        for sent in range(options.bodies):
            try:
                publisher.publish(queue, body)
            except amqp.exceptions.AMQPError as exc:
                print(f"the broker refused body {sent + 1} ({size} bytes): {exc}")
                print("(its max_message_size is under that; nothing was measured)")
                return
        del body
        replies = publisher.replies(options.bodies, timeout=300)
        took = time.monotonic() - started
        good = client.send_task(TASK_NAME, [20]).get(timeout=30)
        sampler.stopped.set()
        sampler.join()
        high_water = rss_mb(worker.pid, "VmHWM")
        alive = worker.poll() is None
    finally:
        publisher.close()
        client.close()
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        delete_queue(options.broker, queue)
    output = log.read_text(errors="replace")
    scratch.cleanup()
    rejected = output.count("without requeue (PayloadTooLarge)")
    refusals = sum(b"PayloadTooLarge" in reply for reply in replies)
    print(f"published       {options.bodies} bodies of {size / 1e6:.0f} MB in {took:.1f} s")
    print(f"worker RSS      {before:.1f} MB before")
    print(f"                {sampler.peak:.1f} MB highest of {sampler.samples} samples")
    print(f"                {high_water:.1f} MB high-water mark (VmHWM, whole life)")
    print(f"rejected        {rejected} deliveries as PayloadTooLarge, none held whole")
    print(f"answered        {refusals} of {options.bodies} callers: bad_request PayloadTooLarge")
    print(f"good call       fib(20) = {good} afterwards; worker alive: {alive}")


if __name__ == "__main__":
    main()
