"""Mistakes a caller can see are caught on the caller, before anything is sent."""

import pytest

from taskrpc import App, InvalidArguments


@pytest.fixture
def offline_app():
    """An app whose broker does not exist: any attempt to send would show."""
    app = App("checks", broker_url="amqp://guest:guest@127.0.0.1:1//")

    @app.task
    def add(x: int, y: int = 0) -> int:
        return x + y

    yield app
    assert not app._clients.made, "a checked call reached the client"
    app.close()


def test_an_unknown_keyword_fails_here_and_names_the_keyword(offline_app):
    add = offline_app.get_task("add")
    with pytest.raises(InvalidArguments) as info:
        add.delay(1, yy=2)
    assert "yy" in str(info.value)
    assert {"loc": ["yy"], "msg": "unexpected keyword argument"}.items() <= {
        **info.value.details[0]
    }.items()


def test_the_local_error_is_the_one_the_worker_would_answer(offline_app):
    add = offline_app.get_task("add")
    with pytest.raises(InvalidArguments) as here:
        add.apply_async(("one",))
    with pytest.raises(InvalidArguments) as worker:
        add.execute(["one"], {})
    assert here.value.details == worker.value.details
    assert here.value.type_name == worker.value.type_name == "ValidationError"


def test_a_wrong_apply_async_shape_is_a_type_error(offline_app):
    add = offline_app.get_task("add")
    with pytest.raises(TypeError, match=r"args must be a tuple or a list, got int"):
        add.apply_async(1, 2)
    with pytest.raises(TypeError, match="kwargs must be a dict, got list"):
        add.apply_async((1,), [2])


def test_missing_arguments_and_send_task_by_a_known_name_are_checked(offline_app):
    with pytest.raises(InvalidArguments, match="missing a required argument"):
        offline_app.get_task("add").delay()
    with pytest.raises(InvalidArguments):
        offline_app.send_task(offline_app.get_task("add").name, [])


def test_checks_can_be_turned_off_and_then_the_worker_decides():
    app = App("checks", broker_url="memory://", check_arguments=False)

    @app.task
    def add(x: int) -> int:
        return x

    add.check_call(["x"], None)  # no local validation; the shape is still checked
    with pytest.raises(TypeError):
        add.check_call("x", None)


def test_run_validates_and_returns_the_declared_type():
    app = App("checks", broker_url="memory://")

    @app.task
    def double(x: int) -> int:
        return 2 * x

    @app.task
    async def triple(x: int) -> int:
        return 3 * x

    assert double.run("21") == 42  # coerced, as on a worker
    assert triple.run(2) == 6
    with pytest.raises(InvalidArguments):
        double.run("x")


def test_a_delayed_call_on_the_in_process_broker_fails_with_a_clear_error():
    from taskrpc import BrokerError

    app = App("checks", broker_url="memory://")

    @app.task(name="later")
    def later(x: int) -> int:
        return x

    try:
        with pytest.raises(BrokerError, match="delayed calls need RabbitMQ"):
            later.apply_async((1,), countdown=0.5, timeout=3).get()
    finally:
        app.close()
