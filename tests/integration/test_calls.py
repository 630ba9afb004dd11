"""Calls through RabbitMQ to a worker in this process: results, errors, threads, timeouts."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import BaseModel

from taskrpc import (
    BrokerError,
    ClientClosed,
    InvalidArguments,
    RemoteError,
    RetryPolicy,
    TimeoutError,
    UnknownTask,
)
from taskrpc.client import iothread
from taskrpc.fibonacci import MAX_N
from taskrpc.fibonacci import fib as local_fib

pytestmark = pytest.mark.broker


class Point(BaseModel):
    x: int
    y: int


@pytest.fixture
def tasks(rpc_app, start_worker):
    rpc_app.configure(send_tracebacks=True)  # the worker runs on this app: it sends them
    @rpc_app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @rpc_app.task(name="move")
    def move(point: Point, dx: int = 0) -> Point:
        return Point(x=point.x + dx, y=point.y)

    @rpc_app.task(name="fail")
    def fail(message: str) -> None:
        raise ValueError(message)

    @rpc_app.task(name="fib")
    def fib(n: int) -> int:
        return local_fib(n)

    @rpc_app.task(name="sleep")
    def sleep(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    start_worker(rpc_app, pool="threads", concurrency=4)
    return add, move, fail, fib, sleep


def test_a_call_returns_the_validated_result(tasks):
    add, *_ = tasks
    assert add.delay(2, "40").get(timeout=10) == 42


def test_pydantic_models_round_trip(tasks):
    _, move, *_ = tasks
    assert move.delay(Point(x=1, y=2), dx=3).get(timeout=10) == Point(x=4, y=2)


def test_huge_integers_stay_exact_across_the_wire(tasks):
    *_, fib, _ = tasks
    assert fib.delay(MAX_N).get(timeout=20) == local_fib(MAX_N)


def test_a_remote_exception_carries_type_message_and_traceback(tasks):
    _, _, fail, *_ = tasks
    with pytest.raises(RemoteError) as info:
        fail.delay("kaput").get(timeout=10)
    error = info.value
    assert type(error) is RemoteError
    assert (error.type_name, error.message) == ("ValueError", "kaput")
    assert "raise ValueError(message)" in error.remote_traceback


def test_invalid_arguments_name_the_field(tasks):
    add, *_ = tasks
    with pytest.raises(InvalidArguments) as info:
        add.delay(1, b="two").get(timeout=10)
    assert info.value.errors()[0]["loc"] == ["b"]


def test_an_unknown_task_gets_its_own_error(tasks, rpc_app):
    with pytest.raises(UnknownTask, match="no_such_task"):
        rpc_app.send_task("no_such_task").get(timeout=10)


def test_get_never_blocks_past_its_timeout(tasks):
    *_, sleep = tasks
    result = sleep.delay(3)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        result.get(timeout=0.3)
    assert time.monotonic() - started < 2.5
    assert result.get(timeout=10) == 3  # the call is still valid until its deadline


def test_the_call_deadline_bounds_get_without_a_timeout(tasks):
    *_, sleep = tasks
    result = sleep.apply_async((3,), timeout=0.3)
    with pytest.raises(TimeoutError, match="deadline"):
        result.get()


def test_many_calls_in_flight_from_several_threads(tasks):
    add, *_ = tasks

    def burst(offset: int) -> list[int]:
        handles = [add.delay(offset, i) for i in range(100)]
        return [h.get(timeout=20) for h in handles]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(burst, range(0, 8000, 1000)))
    for offset, values in zip(range(0, 8000, 1000), results, strict=True):
        assert values == [offset + i for i in range(100)]
    assert add.app.client.unknown_replies == 0 and add.app.client.duplicate_replies == 0


@pytest.fixture
def lazy_io_thread(monkeypatch):
    """The client's I/O thread looks at an unwatched socket only once a minute."""
    monkeypatch.setattr(iothread, "IDLE_CHECK", 60.0)


def test_polling_ready_alone_sees_the_reply(tasks, lazy_io_thread):
    # Nobody waits in get(), so no caller reads the socket: ready() must read it.
    add, *_ = tasks
    result = add.delay(2, 3)
    deadline = time.monotonic() + 10
    while not result.ready():
        assert time.monotonic() < deadline, "ready() never saw the reply"
        time.sleep(0.005)
    assert result.get(timeout=0) == 5


def test_when_the_reading_caller_finishes_another_waiting_thread_still_gets_its_reply(
    tasks, lazy_io_thread
):
    # The first caller to wait reads the socket for everyone; once its own reply is in,
    # it leaves, and a reply for a caller still waiting must reach it all the same.
    *_, sleep = tasks
    first, second = sleep.delay(0.4), sleep.delay(0.8)

    def wait_second() -> float:
        time.sleep(0.1)  # let the main thread start waiting (and reading) first
        return second.get(timeout=10)

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(wait_second)
        assert first.get(timeout=10) == 0.4
        assert waiting.result(timeout=15) == 0.8


def test_closing_the_client_fails_waiting_calls(tasks, rpc_app):
    *_, sleep = tasks
    result = sleep.delay(2)
    closer = threading.Timer(0.2, rpc_app.close)
    closer.start()
    with pytest.raises(ClientClosed):
        result.get(timeout=10)


def test_an_unreachable_broker_fails_fast_with_a_clean_message():
    from taskrpc import App

    app = App(
        "x",
        broker_url="amqp://user:s3cret@127.0.0.1:1//",
        connect_retry=RetryPolicy(max_retries=2, backoff=0.05),
    )
    started = time.monotonic()
    with pytest.raises(BrokerError) as info:
        app.send_task("anything", timeout=30)
    assert time.monotonic() - started < 10  # the retry budget, not the 30 s deadline
    assert "s3cret" not in str(info.value)
    with pytest.raises(BrokerError):  # and within the deadline when that is shorter
        App("y", broker_url="amqp://127.0.0.1:1//").send_task("anything", timeout=0.5)
    app.close()
