"""The control plane against real worker processes: inspect, revoke, signing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from taskrpc import App, RemoteError, Revoked
from taskrpc.control import broadcast

from ..conftest import ROOT

pytestmark = pytest.mark.broker

SAMPLE = "tests.apps.sample:app"


def inspect(broker_url: str, queue: str, *args: str, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "taskrpc", "inspect", *args],
        env={
            **os.environ,
            "TASKRPC_BROKER_URL": broker_url,
            "TASKRPC_DEFAULT_QUEUE": queue,
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        },
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def mine(answers: list[dict], pid: int) -> dict:
    (answer,) = [a for a in answers if a["pid"] == pid]
    return answer["result"]


def test_a_solo_worker_busy_with_a_cpu_bound_task_still_answers(rpc_app, spawn_worker, broker_url):
    worker = spawn_worker("--pool", "solo")
    queue = rpc_app.settings.default_queue
    spinning = rpc_app.send_task("spin", [8.0])  # the worker's only thread burns CPU
    active: list[dict] = []
    for _ in range(6):  # the first asks may come before the worker took the request
        done = inspect(broker_url, queue, "active", "--app", SAMPLE, "--json", "--timeout", "3")
        assert done.returncode in (0, 3), done.stderr
        answers = [a for a in json.loads(done.stdout or "[]") if a["pid"] == worker.pid]
        active = answers[0]["result"] if answers else []
        if active:
            break
    assert [item["task"] for item in active] == ["spin"]
    assert active[0]["id"] == spinning.id
    assert not spinning.ready()  # answered while the task was still running
    assert spinning.get(timeout=30) == worker.pid


def test_inspect_prints_tables_of_every_command(rpc_app, spawn_worker, broker_url):
    worker = spawn_worker("--pool", "threads", "-c", "3")
    queue = rpc_app.settings.default_queue
    assert rpc_app.send_task("add", [1, 2]).get() == 3
    with pytest.raises(RemoteError):
        rpc_app.send_task("fail", ["no luck"]).get()
    me = f":{worker.pid}"

    ping = inspect(broker_url, queue, "ping", "--app", SAMPLE)
    assert ping.returncode == 0 and me in ping.stdout and "threads" in ping.stdout

    stats = json.loads(inspect(broker_url, queue, "stats", "--app", SAMPLE, "--json").stdout)
    result = mine(stats, worker.pid)
    assert result["concurrency"] == 3 and result["state"] == "connected"
    assert result["tasks"]["add"]["succeeded"] == 1 and result["tasks"]["fail"]["failed"] == 1
    assert result["failures"][0]["code"] == "task_failed"
    assert result["failures"][0]["message"] == "no luck"

    registered = inspect(broker_url, queue, "registered", "--app", SAMPLE, "--json")
    tasks = {item["task"]: item for item in mine(json.loads(registered.stdout), worker.pid)}
    assert tasks["add"]["queue"] == queue
    assert set(tasks["add"]["schema"]["properties"]) == {"a", "b"}

    queues = inspect(broker_url, queue, "queues", "--app", SAMPLE)
    assert queue in queues.stdout and "CONSUMERS" in queues.stdout
    (row,) = [line for line in queues.stdout.splitlines() if line.startswith(queue)]
    assert row.split()[1:] == ["0", "1"]


def test_inspect_exits_3_when_no_worker_of_the_app_answers(broker_url, unique_queue):
    done = inspect(
        broker_url, unique_queue, "ping", "--app", "tests.observe.apps:lonely", "--timeout", "0.5"
    )
    assert done.returncode == 3 and "no worker answered" in done.stdout


def test_a_revoked_request_is_refused_and_never_runs(rpc_app, spawn_worker, tmp_path):
    worker = spawn_worker("--pool", "solo")
    marker = tmp_path / "runs"
    blocker = rpc_app.send_task("spin", [1.5])
    waiting = rpc_app.send_task("marked_sleep", [str(marker), 0.0, 1])
    answers = App("sample", broker_url=rpc_app.settings.broker_url).revoke(waiting.id)
    assert worker.pid in [a["pid"] for a in answers]
    assert blocker.get(timeout=30) == worker.pid
    with pytest.raises(Revoked):
        waiting.get(timeout=30)
    assert not marker.exists()
    stats = mine(
        broadcast(App("sample", broker_url=rpc_app.settings.broker_url), "stats"), worker.pid
    )
    assert stats["tasks"]["marked_sleep"]["refused"] == 1 and stats["revoked"] == 1


def test_control_messages_are_signed_when_the_app_signs(broker_url, unique_queue, start_worker):
    key = ("k1:0123456789abcdef0123456789abcdef",)
    name = f"signed-{uuid.uuid4().hex[:8]}"
    signed = App(name, broker_url=broker_url, default_queue=unique_queue, signing_keys=key)
    worker = start_worker(signed, control=True)
    unsigned = App(name, broker_url=broker_url)
    wrong = App(name, broker_url=broker_url, signing_keys=("k1:another-secret-of-sixteen-b",))
    try:
        wait_for(lambda: broadcast(signed, "ping", timeout=0.5))
        assert broadcast(unsigned, "ping", timeout=0.5) == []
        assert broadcast(wrong, "ping", timeout=0.5) == []
        (answer,) = broadcast(signed, "ping", timeout=0.5)
        assert answer["result"]["app"] == name and answer["pid"] == os.getpid()
        assert answer["result"]["pool"] == worker.pool_kind
    finally:
        for app in (signed, unsigned, wrong):
            app.close()


def wait_for(condition, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
    return result


def test_revoke_terminate_kills_the_process_running_the_request(rpc_app, spawn_worker):
    worker = spawn_worker("--pool", "processes", "-c", "1")
    running = rpc_app.send_task("spin", [20.0])
    sample = App("sample", broker_url=rpc_app.settings.broker_url)
    wait_for(
        lambda: any(a["pid"] == worker.pid and a["result"] for a in broadcast(sample, "active"))
    )
    answers = sample.revoke(running.id, terminate=True)
    (mine_,) = [a["result"] for a in answers if a["pid"] == worker.pid]
    assert mine_["running"] == [running.id] and mine_["interrupted"] == [running.id]
    with pytest.raises(Revoked):
        running.get(timeout=10)
    assert rpc_app.send_task("add", [1, 1]).get(timeout=20) == 2  # a fresh child serves on
