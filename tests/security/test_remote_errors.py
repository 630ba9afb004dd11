"""Remote exception types are rebuilt on the caller only from its allow-list."""

from __future__ import annotations

import sys

import pytest

from taskrpc import App, RemoteError
from taskrpc.messages import ErrorInfo
from taskrpc.security import RemoteExceptionTypes

from .apps import Refused

pytestmark = pytest.mark.broker

#: This module's worker sends tracebacks (test_bad_input's shows that none is sent by default).
WORKER_ENV = {"TASKRPC_SEND_TRACEBACKS": "1"}


@pytest.fixture(scope="module")
def allowing(client_app: App) -> App:
    client_app.allow_remote_exceptions(ValueError, Refused, OSError)
    return client_app


@pytest.mark.parametrize("kind", ["ValueError", "Refused", "OSError"])
def test_allowed_types_come_back_as_themselves_and_as_remote_errors(allowing, kind):
    expected = {"ValueError": ValueError, "Refused": Refused, "OSError": OSError}[kind]
    with pytest.raises(expected) as info:
        allowing.send_task("raise", [kind, "no stock"]).get(timeout=10)
    error = info.value
    assert isinstance(error, RemoteError) and error.message == "no stock"
    assert error.remote_traceback and "no stock" in error.remote_traceback


def test_other_types_stay_remote_errors(allowing):
    with pytest.raises(RemoteError) as info:
        allowing.send_task("raise", ["KeyError", "k"]).get(timeout=10)
    assert not isinstance(info.value, KeyError)
    assert info.value.type_name == "KeyError"


def test_taskrpc_errors_keep_their_own_class(allowing):
    from taskrpc import InvalidArguments

    with pytest.raises(InvalidArguments):
        allowing.send_task("add", ["x", 1]).get(timeout=10)


def test_a_type_named_in_a_message_is_never_imported():
    sys.modules.pop("this_module_does_not_exist", None)
    types = RemoteExceptionTypes()
    types.allow(ValueError)
    for name in ("this_module_does_not_exist.Boom", "os.system", "builtins.ValueError"):
        error = ErrorInfo(type=name, message="m").to_exception()
        assert type(types.rebuild(error)) is RemoteError
    assert "this_module_does_not_exist" not in sys.modules


def test_subclasses_of_allowed_types_are_not_rebuilt_as_their_parent():
    class Mine(ValueError):
        pass

    types = RemoteExceptionTypes()
    types.allow(ValueError)
    error = ErrorInfo.from_exception(Mine("m")).to_exception()
    assert type(types.rebuild(error)) is RemoteError


def test_only_exception_classes_can_be_allowed():
    from taskrpc import ConfigurationError

    with pytest.raises(ConfigurationError):
        RemoteExceptionTypes().allow("ValueError")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        RemoteExceptionTypes().allow(SystemExit)  # type: ignore[arg-type]
