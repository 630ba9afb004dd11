"""The app, its task registry, and the public API surface."""

import pytest

import taskrpc
from taskrpc import App, ConfigurationError, NotRegistered


def test_all_lists_every_public_name_and_only_existing_ones():
    import types

    public = {
        name
        for name, value in vars(taskrpc).items()
        if not name.startswith(("_", "@")) and not isinstance(value, types.ModuleType)
    }
    assert set(taskrpc.__all__) - {"__version__"} == public
    assert all(hasattr(taskrpc, name) for name in taskrpc.__all__)


def test_the_decorator_works_bare_and_with_options():
    app = App("t", broker_url="memory://")

    @app.task
    def plain(x: int) -> int:
        return x

    @app.task(name="custom", queue="q1")
    def named(x: int) -> int:
        return x

    assert plain.name.endswith("test_the_decorator_works_bare_and_with_options.<locals>.plain")
    assert (named.name, named.queue) == ("custom", "q1")
    assert plain.queue == app.settings.default_queue
    assert app.queues == ["q1", "taskrpc.default"]


def test_calling_a_task_runs_it_locally_without_a_broker():
    app = App("t", broker_url="amqp://nowhere.invalid//")

    @app.task
    def double(x: int) -> int:
        return 2 * x

    assert double(21) == 42
    assert double.__name__ == "double" and not app._clients.made


def test_registering_two_tasks_under_one_name_is_refused():
    app = App("t", broker_url="memory://")
    app.task(name="same")(lambda: 1)
    with pytest.raises(ConfigurationError, match="already registered"):
        app.task(name="same")(lambda: 2)


def test_tasks_are_found_by_name_or_unique_function_name():
    from taskrpc.fibonacci import app

    assert app.get_task("fib").name == "fib"
    with pytest.raises(NotRegistered):
        app.get_task("fibonacci")


def test_fibonacci_is_exact_and_fast_for_large_n():
    from taskrpc.fibonacci import MAX_N, fib

    a, b = 0, 1
    for _ in range(1000):
        a, b = b, a + b
    assert fib(1000) == a
    assert [fib(n) for n in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
    a, b = 0, 1
    for _ in range(MAX_N):
        a, b = b, a + b
    assert fib(MAX_N) == a  # 20,899 digits
