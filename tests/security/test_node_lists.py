"""A list of broker nodes: the first that answers serves, and no node's password shows.

Three URLs, each with its own password, one of them malformed, listed before the real
broker: reprs, logs, errors, ``--help`` and ``taskrpc call`` output never show a password.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from taskrpc import App, BrokerError, Settings, Worker
from taskrpc.cli import cli
from taskrpc.transport import connect
from taskrpc.urls import mask_url

from .conftest import ROOT

pytestmark = pytest.mark.broker

SECRETS = ("Pw-dead1-7c1e", "Pw-dead2-0b9d", "Pw-mal@formed-5e2a")
DEAD = [
    f"amqp://guest:{SECRETS[0]}@127.0.0.1:1//",
    f"amqp://guest:{SECRETS[1]}@127.0.0.1:2//",
    f"amqp://guest:{SECRETS[2]}@127.0.0.1:notaport//",  # malformed
]


def assert_clean(text: str) -> None:
    for secret in SECRETS + ("Pw-mal",):
        assert secret not in text, text


def test_the_first_node_that_answers_serves_the_calls(broker_url, unique_queue, caplog):
    app = App("nodes", broker_url=[*DEAD, broker_url], default_queue=unique_queue)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with caplog.at_level(logging.INFO, logger="taskrpc"):
        worker = Worker(app, concurrency=1)
        thread = worker.start_in_thread(timeout=30)
        try:
            with app:
                assert add.delay(2, 3).get(timeout=20) == 5
        finally:
            worker.stop()
            thread.join(10)
    assert "4 of 4" in caplog.text  # worker and client both name the node they chose
    assert "127.0.0.1:1" in caplog.text and "did not answer" in caplog.text
    assert_clean(caplog.text)
    assert_clean(repr(app) + repr(app.settings) + repr(worker))


def test_no_node_answering_is_one_error_naming_each_node_masked():
    with pytest.raises(BrokerError) as info:
        connect(Settings(broker_url=";".join(DEAD), connect_timeout=2))
    message = str(info.value)
    assert "any of 3 broker nodes" in message
    assert message.count("guest:**@") == 3
    assert_clean(message)
    assert_clean(repr(info.value))


@pytest.mark.parametrize("args", [["--help"], ["worker", "--help"], ["call", "--help"]])
def test_help_shows_no_password_of_a_node_list(args):
    result = CliRunner().invoke(cli, args, env={"TASKRPC_BROKER_URL": ";".join(DEAD)})
    assert result.exit_code == 0
    assert_clean(result.output)


@pytest.mark.parametrize("where", ["option", "environment"])
def test_taskrpc_call_reports_unreachable_nodes_without_passwords(where):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["call", "tests.security.apps:app", "add", "1", "2", "--timeout", "3"]
    if where == "option":
        args += ["--broker", ";".join(DEAD)]
    else:
        env["TASKRPC_BROKER_URL"] = ";".join(DEAD)
    result = subprocess.run(
        [sys.executable, "-m", "taskrpc", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 4, result.stdout + result.stderr  # EXIT_BROKER
    assert "127.0.0.1:2" in result.stderr
    assert_clean(result.stdout + result.stderr)


def test_a_worker_process_given_a_node_list_logs_only_masked_urls(
    spawn_worker, broker_url, unique_queue
):
    worker = spawn_worker("--broker", ";".join([*DEAD, broker_url]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "taskrpc",
            "call",
            "tests.apps.sample:app",
            "add",
            "2",
            "2",
            "--broker",
            ";".join([*DEAD, broker_url]),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TASKRPC_DEFAULT_QUEUE": unique_queue},
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"
    assert_clean(result.stdout + result.stderr)
    log = worker.output()
    assert f"connected to broker node {mask_url(broker_url)} (4 of 4)" in log
    assert_clean(log)
