"""The command line: call's output and exit codes, worker start-up errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from taskrpc.cli import EXIT_BROKER, EXIT_TASK_FAILED, EXIT_TIMEOUT, EXIT_USAGE

pytestmark = pytest.mark.broker


def taskrpc(
    *args: str, broker: str, queue: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TASKRPC_BROKER_URL": broker,
        "TASKRPC_DEFAULT_QUEUE": queue,
        "PYTHONPATH": os.getcwd(),
    }
    return subprocess.run(
        [sys.executable, "-m", "taskrpc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def run(broker_url, unique_queue):
    return lambda *args, **kw: taskrpc(*args, broker=broker_url, queue=unique_queue, **kw)


def test_call_prints_the_result_as_json(spawn_worker, run):
    spawn_worker(app="taskrpc.fibonacci:app")
    done = run("call", "taskrpc.fibonacci:app", "fib", "90")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == 2880067194370816120


def test_call_keyword_arguments_and_models(spawn_worker, run):
    spawn_worker()
    done = run("call", "tests.apps.sample:app", "move", '{"x": 1, "y": 2}', "-k", "dx=4")
    assert json.loads(done.stdout) == {"x": 5, "y": 2}


def test_call_exits_non_zero_with_the_remote_error(spawn_worker, run):
    spawn_worker(app="taskrpc.fibonacci:app")
    done = run("call", "taskrpc.fibonacci:app", "fib", "-1")  # a negative number, not an option
    assert done.returncode == EXIT_TASK_FAILED
    assert "InvalidArguments" in done.stderr and "greater than or equal to 0" in done.stderr
    done = run("call", "taskrpc.fibonacci:app", "nope")
    assert done.returncode == EXIT_TASK_FAILED
    assert "error: UnknownTask: no task named 'nope'" in done.stderr


def test_call_prints_the_remote_traceback_on_request(spawn_worker, run, monkeypatch):
    monkeypatch.setenv("TASKRPC_SEND_TRACEBACKS", "1")  # workers leave them out by default
    spawn_worker()
    done = run("call", "tests.apps.sample:app", "fail", "bad things", "--traceback")
    assert done.returncode == EXIT_TASK_FAILED
    assert "ValueError: bad things" in done.stderr and "Traceback" in done.stderr


def test_call_times_out_with_its_own_exit_code(run):
    done = run("call", "tests.apps.sample:app", "add", "1", "2", "--timeout", "0.5")
    assert done.returncode == EXIT_TIMEOUT and "timeout" in done.stderr


def test_call_reports_an_unreachable_broker_without_the_password(run):
    done = run(
        "call",
        "tests.apps.sample:app",
        "add",
        "1",
        "2",
        "--broker",
        "amqp://u:s3cret@127.0.0.1:1//",
    )
    assert done.returncode == EXIT_BROKER
    assert "s3cret" not in done.stderr + done.stdout


def test_worker_refuses_an_app_path_that_does_not_exist(run):
    done = run("worker", "no.such.module:app")
    assert done.returncode == EXIT_USAGE and "cannot import" in done.stderr


def test_a_refused_password_exits_at_once_with_the_usage_code(run, broker_url):
    wrong = broker_url.replace("guest:guest@", "guest:not-the-password@")
    started = time.monotonic()
    done = run("worker", "taskrpc.fibonacci:app", "--broker", wrong)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "ACCESS_REFUSED" in done.stderr and "not-the-password" not in done.stderr
    assert "retrying (attempt" not in done.stderr and time.monotonic() - started < 30


def test_worker_exits_with_the_broker_code_when_unreachable(run):
    done = run("worker", "taskrpc.fibonacci:app", "--broker", "amqp://u:s3cret@127.0.0.1:1//")
    assert done.returncode == EXIT_BROKER
    assert "s3cret" not in done.stderr


def test_a_malformed_setting_is_a_usage_error_not_a_traceback(broker_url, unique_queue):
    env = {
        **os.environ,
        "TASKRPC_BROKER_URL": broker_url,
        "TASKRPC_DEFAULT_TIMEOUT": "soon",
        "TASKRPC_DEFAULT_QUEUE": unique_queue,
    }
    done = subprocess.run(
        [sys.executable, "-m", "taskrpc", "worker", "taskrpc.fibonacci:app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "TASKRPC_DEFAULT_TIMEOUT" in done.stderr and "Traceback" not in done.stderr
