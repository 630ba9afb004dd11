"""Credentials (broker passwords, signing secrets) never show in reprs, errors, logs or --help."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from taskrpc import App, BrokerError, ConfigurationError, Settings, Worker
from taskrpc.cli import cli
from taskrpc.security.signing import Signer, SigningKey
from taskrpc.settings import safe_url
from taskrpc.transport import connect

from .conftest import ROOT

pytestmark = pytest.mark.broker

PASSWORD = "Pw-s3cret-4f7a"
SECRET = "Key-s3cret-9b2c-0123456789"
SECRETS = (PASSWORD, SECRET)
URL = f"amqp://guest:{PASSWORD}@127.0.0.1:5672//"

#: The module's worker signs with a key whose secret must never be logged.
WORKER_ENV = {"TASKRPC_SIGNING_KEYS": f"kid:{SECRET}"}
CLIENT_OPTIONS = {"signing_keys": (f"kid:{SECRET}",)}


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, text


def test_reprs_mask_the_password_and_omit_keys():
    app = App("x", broker_url=URL, signing_keys=(f"kid:{SECRET}",))
    for thing in (app, app.settings, app.codec, app.codec.signer, Worker(app)):
        assert_clean(repr(thing))
        assert_clean(str(thing))
    assert_clean(repr(SigningKey.parse(f"kid:{SECRET}")))
    assert_clean(safe_url(URL))


@pytest.mark.parametrize(
    "entry", [SECRET, f"kid:{SECRET[:8]}", f":{SECRET}"], ids=["no-id", "short", "empty-id"]
)
def test_malformed_keys_are_reported_without_the_secret(entry):
    with pytest.raises(ConfigurationError) as info:
        Signer.from_entries([entry], window=10)
    assert_clean(str(info.value))
    with pytest.raises(ConfigurationError) as info:
        App(
            "x", broker_url="memory://", settings=Settings.from_env({"TASKRPC_SIGNING_KEYS": entry})
        )
    assert_clean(str(info.value))


@pytest.mark.parametrize(
    "url", [URL, f"amqp://guest:{PASSWORD}@127.0.0.1:1//"], ids=["refused-login", "no-broker"]
)
def test_connection_errors_mask_the_password(url):
    with pytest.raises(BrokerError) as info:
        connect(Settings(broker_url=url, connect_timeout=2))
    assert_clean(str(info.value))
    assert_clean(repr(info.value))


@pytest.mark.parametrize("args", [["--help"], ["worker", "--help"], ["call", "--help"]])
def test_help_never_shows_the_environment_s_credentials(args):
    env = {"TASKRPC_BROKER_URL": URL, "TASKRPC_SIGNING_KEYS": f"kid:{SECRET}"}
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0
    assert_clean(result.output)


@pytest.mark.parametrize(
    "command",
    [
        ["worker", "tests.security.apps:app"],
        ["call", "tests.security.apps:app", "add", "1", "2", "--timeout", "3"],
    ],
    ids=["worker", "call"],
)
def test_a_bad_login_is_reported_without_the_password(command):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TASKRPC_SIGNING_KEYS": f"kid:{SECRET}"}
    result = subprocess.run(
        [sys.executable, "-m", "taskrpc", *command, "--broker", URL],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=30,
    )
    # A worker refused its login exits 2 (EXIT_USAGE: a service manager must not restart
    # it for ever); a one-off call reports the broker failure, 4 (EXIT_BROKER).
    expected = 2 if command[0] == "worker" else 4
    assert result.returncode == expected, result.stderr
    assert "cannot connect" in result.stderr or "broker" in result.stderr
    assert_clean(result.stdout + result.stderr)


def test_a_running_worker_logs_no_credentials(raw, served, client_app):
    assert client_app.send_task("add", [1, 2]).get(timeout=10) == 3
    with pytest.raises(Exception):  # noqa: B017 - any refusal: we only read the log after
        raw.call(b"{oops", headers={"taskrpc-task": "add"}).get(timeout=10)
    log = served.output()
    assert "ready" in log and ":guest@" not in log
    assert_clean(log)
