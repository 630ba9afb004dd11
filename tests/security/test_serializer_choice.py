"""The serializer is chosen per app, per task and per call (the call wins); the reply
uses the request's serializer unless the task names its own."""

from __future__ import annotations

from typing import Any

import pytest

from taskrpc import App

pytestmark = pytest.mark.broker

BIG = 2**200 + 1


@pytest.fixture(scope="module")
def tasks(client_app: App) -> App:
    """The client's copy of the worker's task options (as if it imported tests.security.apps)."""

    @client_app.task(name="echo.msgpack", serializer="msgpack")
    def echo_msgpack(value: Any) -> Any: ...

    return client_app


def reply_type(app: App, task: str, value: object, **options: object) -> str:
    """Content type of the raw reply to one call (peeked at through the pending call)."""
    result = app.send_task(task, [value], **options)  # type: ignore[arg-type]
    assert result.get(timeout=10) == value
    reply, _ = result._call.outcome()
    return reply.content_type


def test_the_app_default_is_json(tasks):
    assert reply_type(tasks, "echo", BIG) == "application/json"


def test_a_task_s_serializer_is_used_for_its_requests_and_replies(tasks):
    assert reply_type(tasks, "echo.msgpack", BIG) == "application/x-msgpack"


def test_the_call_wins_over_the_task(tasks):
    assert reply_type(tasks, "echo.msgpack", BIG, serializer="json") == "application/json"
    assert reply_type(tasks, "echo", BIG, serializer="msgpack") == "application/x-msgpack"


def test_a_task_may_fix_its_reply_serializer(tasks):
    assert reply_type(tasks, "echo.json_reply", BIG, serializer="msgpack") == "application/json"


def test_an_app_wide_serializer_applies_to_every_call(served, broker_url):
    with App("mp", broker_url=broker_url, default_queue=served.queue, serializer="msgpack") as app:
        assert reply_type(app, "echo", {"n": BIG, "s": "é"}) == "application/x-msgpack"


def test_a_worker_refuses_a_serializer_it_does_not_accept(tasks):
    from taskrpc import BadRequest
    from taskrpc.serializers import JSONSerializer

    class VendorJSON(JSONSerializer):
        name = "vendor-json"
        content_type = "application/vnd.example+json"

    tasks.serializers.register(VendorJSON())
    with pytest.raises(BadRequest) as info:
        tasks.send_task("echo", [1], serializer="vendor-json").get(timeout=10)
    assert info.value.type_name == "ContentDisallowed"


def test_arguments_a_serializer_cannot_encode_are_refused_before_sending(tasks):
    with pytest.raises(TypeError, match="cannot be sent"):
        tasks.send_task("echo", [1], serializer="text")


def test_pickle_cannot_be_chosen_until_enabled(tasks):
    from taskrpc import ConfigurationError

    with pytest.raises(ConfigurationError, match="unsafe"):
        tasks.send_task("echo", [1], serializer="pickle")
