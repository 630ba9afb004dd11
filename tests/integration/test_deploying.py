"""What ``docs/guide/deploying.rst`` says about systemd and quorum queues, checked.

* The example systemd unit (``examples/several_workers/taskrpc-worker@.service``) passes
  ``systemd-analyze verify`` with no complaint (skipped where systemd is not installed).
* A queue pre-declared as a quorum queue conflicts with the worker's own declaration
  (durable classic, no arguments): the broker refuses it and the worker never consumes.
* In a virtual host whose default queue type is ``quorum``, the same worker and client
  work unchanged: task queues are created as quorum queues, reply queues stay classic, and
  a request's deadline (per-message TTL) still drops it. This part needs ``rabbitmqctl``
  for the local broker, to create and delete the virtual host.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection

from taskrpc import App
from taskrpc.testing.broker import queue_state, wait_for_consumers

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "examples" / "several_workers" / "taskrpc-worker@.service"


def test_the_example_systemd_unit_verifies_cleanly(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    taskrpc_command = Path(sys.executable).with_name("taskrpc")
    assert taskrpc_command.exists(), "the taskrpc console script is not installed"
    text = UNIT.read_text().replace("/srv/shop/.venv/bin/taskrpc", str(taskrpc_command))
    (tmp_path / UNIT.name).write_text(text)

    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "taskrpc-worker@1.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )

    # verify exits 0 on most mistakes; what it prints is what matters.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def start_worker(url: str, queue: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRPC_")}
    env.update(TASKRPC_BROKER_URL=url, TASKRPC_DEFAULT_QUEUE=queue)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "taskrpc", "worker", "taskrpc.fibonacci:app", "-Q", queue],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=5)


@pytest.mark.broker
@pytest.mark.timeout(60)
def test_a_pre_declared_quorum_queue_conflicts_with_the_workers_declaration(
    broker_url: str, unique_queue: str, tmp_path: Path
) -> None:
    with Connection(broker_url, connect_timeout=5) as connection:
        connection.default_channel.queue_declare(
            unique_queue, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"}
        )
    log = tmp_path / "worker.log"
    worker = start_worker(broker_url, unique_queue, log)
    try:
        code = worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    output = log.read_text(errors="replace")
    # Retrying cannot fix a conflicting declaration: the worker says why and exits 2.
    assert code == 2, output
    assert "inequivalent arg 'x-queue-type'" in output and "refused the worker's setup" in output


@pytest.fixture
def quorum_vhost(broker_url: str) -> Iterator[str]:
    """A fresh virtual host whose default queue type is quorum; its URL. Deleted after."""
    parts = urllib.parse.urlsplit(broker_url)
    if parts.hostname not in {"localhost", "127.0.0.1", "::1"} or not shutil.which("rabbitmqctl"):
        pytest.skip("needs rabbitmqctl for a broker on this machine")
    vhost = f"taskrpc-test-quorum-{uuid.uuid4().hex[:8]}"
    user = urllib.parse.unquote(parts.username or "guest")

    def rabbitmqctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)

    rabbitmqctl("add_vhost", vhost, "--default-queue-type", "quorum")
    try:
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(vhost, "")))
    finally:
        rabbitmqctl("delete_vhost", vhost)


def queue_types(vhost_url: str) -> dict[str, str]:
    vhost = urllib.parse.unquote(urllib.parse.urlsplit(vhost_url).path[1:])
    listing = subprocess.run(
        ["rabbitmqctl", "list_queues", "-q", "-p", vhost, "name", "type"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = [line.split("\t") for line in listing.splitlines()[1:] if "\t" in line]
    return {name: kind for name, kind in rows}


@pytest.mark.broker
@pytest.mark.timeout(90)
def test_a_vhost_with_quorum_as_default_queue_type_serves_unchanged(
    quorum_vhost: str, tmp_path: Path
) -> None:
    queue = "orders"
    log = tmp_path / "worker.log"
    worker = start_worker(quorum_vhost, queue, log)
    try:
        wait_for_consumers(quorum_vhost, queue, timeout=20)
        with App("quorum", broker_url=quorum_vhost, default_queue=queue) as app:
            assert app.send_task("fib", [90], timeout=10).get() == 2880067194370816120
            types = queue_types(quorum_vhost)
            replies = [kind for name, kind in types.items() if name.startswith("taskrpc.reply.")]
            assert types[queue] == "quorum"
            assert replies == ["classic"]  # exclusive queues stay classic
    finally:
        assert stop(worker) == 0, log.read_text(errors="replace")
    # With no worker, a request waits in the quorum queue until its deadline, then goes.
    with App("quorum", broker_url=quorum_vhost, default_queue=queue) as app:
        # The deadline leaves room for a slow connect: it starts before the client connects.
        call = app.send_task("fib", [10], timeout=2.0)
        time.sleep(0.2)
        assert queue_state(quorum_vhost, queue) == (1, 0)
        time.sleep(3.0)
        assert queue_state(quorum_vhost, queue) == (0, 0)
        assert not call.ready()
