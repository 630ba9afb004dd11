"""Settings from arguments and the environment; credentials never leak."""

import pytest

from taskrpc import App, ConfigurationError, Settings
from taskrpc.settings import DEFAULT_BROKER_URL


def test_defaults_apply_without_environment():
    settings = Settings.from_env({})
    assert settings.broker_url == DEFAULT_BROKER_URL
    assert settings.default_queue == "taskrpc.default"


def test_environment_variables_are_parsed_to_their_types():
    settings = Settings.from_env(
        {
            "TASKRPC_BROKER_URL": "amqp://h//",
            "TASKRPC_DEFAULT_TIMEOUT": "2.5",
            "TASKRPC_PERSISTENT_REQUESTS": "yes",
            "TASKRPC_PREFETCH_MULTIPLIER": "7",
        }
    )
    assert settings.broker_url == "amqp://h//" and settings.default_timeout == 2.5
    assert settings.persistent_requests is True and settings.prefetch_multiplier == 7


def test_explicit_arguments_beat_the_environment():
    settings = Settings.from_env({"TASKRPC_BROKER_URL": "amqp://env//"}, broker_url="memory://")
    assert settings.broker_url == "memory://"


def test_a_malformed_variable_is_a_configuration_error_naming_it():
    with pytest.raises(ConfigurationError, match="TASKRPC_DEFAULT_TIMEOUT"):
        Settings.from_env({"TASKRPC_DEFAULT_TIMEOUT": "soon"})


def test_passwords_are_masked_in_reprs_and_safe_urls():
    app = App("x", broker_url="amqp://user:s3cret@host:5672//")
    assert "s3cret" not in repr(app)
    assert "s3cret" not in app.settings.safe_broker_url


def test_configure_refuses_unknown_options():
    with pytest.raises(ConfigurationError):
        App("x", broker_url="memory://").configure(no_such_option=1)


def test_heartbeats_are_on_by_default_and_whole_seconds():
    assert Settings.from_env({}).broker_heartbeat == 10
    assert Settings.from_env({"TASKRPC_BROKER_HEARTBEAT": "0"}).broker_heartbeat == 0
    assert Settings.from_env({"TASKRPC_BROKER_HEARTBEAT": "30"}).broker_heartbeat == 30
    for bad in (0.5, -1, 2.5, 70000):
        with pytest.raises(ConfigurationError, match="broker_heartbeat"):
            Settings(broker_heartbeat=bad)
