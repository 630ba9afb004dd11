"""The two contestants, driven the same way: one call at a time, or many in flight.

Each phase returns every call's latency and the phase's wall time. Latency runs from
just before the request is sent to when the caller has the result in hand.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from .baseline import TICK_EVERY, BaselineClient, Tick, fib_iter
from .tasks import TASK_NAME, bench_task, make_app


class BenchmarkError(RuntimeError):
    """The benchmark could not run: a server died or answered wrongly."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """What one phase measured."""

    #: Seconds per call.
    latencies: list[float]
    #: Seconds the whole phase took.
    elapsed: float


def _no_tick(done: int) -> None:
    pass


class BaselineDriver:
    """Drives the raw-kombu client."""

    name = "baseline"

    def __init__(self, url: str, queue: str, n: int, timeout: float) -> None:
        self.n = n
        self._client = BaselineClient(url, queue, timeout=timeout)

    def call_once(self) -> Any:
        """One call; the result."""
        return self._client.call(self.n)

    def sequential(self, count: int, tick: Tick = _no_tick) -> Sample:
        """``count`` calls, each sent when the previous one has answered."""
        return _sequential(self.call_once, count, tick)

    def pipelined(self, count: int, in_flight: int, tick: Tick = _no_tick) -> Sample:
        """``count`` calls with ``in_flight`` outstanding at any time."""
        started = time.perf_counter()
        latencies = self._client.pipelined(count, in_flight, self.n, tick)
        return Sample(latencies, time.perf_counter() - started)

    def close(self) -> None:
        """Close the connection."""
        self._client.close()


class TaskrpcDriver:
    """Drives a taskrpc app's sync client, through the typed task (``fib.delay(n).get()``).

    ``task`` names the task called (the tiny Fibonacci by default); ``direct_reply_to``
    has the client use RabbitMQ's direct reply-to instead of its callback queue.
    """

    name = "taskrpc"

    def __init__(
        self,
        url: str,
        queue: str,
        n: int,
        timeout: float,
        *,
        task: str = TASK_NAME,
        direct_reply_to: bool = False,
        queue_type: str = "classic",
    ) -> None:
        self.n = n
        self.app = make_app(
            broker_url=url,
            default_queue=queue,
            default_timeout=timeout,
            direct_reply_to=direct_reply_to,
            queue_type=queue_type,
            dead_letter_queue="",
        )
        self._task = bench_task(self.app, task)

    def call_once(self) -> Any:
        """One call; the result."""
        return self._task.delay(self.n).get()

    def send(self) -> Any:
        """Send one call; its handle (``.get()`` waits for the result)."""
        return self._task.delay(self.n)

    def wait_ready(self, check: Callable[[], None], timeout: float) -> None:
        """Wait until the worker answers, calling ``check`` (which raises if it died) meanwhile.

        Raises:
            BenchmarkError: No answer within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        result = self._task.apply_async((self.n,), timeout=timeout)
        while True:
            check()
            try:
                result.get(timeout=0.25)
                return
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise BenchmarkError(
                        f"the taskrpc worker did not answer in {timeout:g} s"
                    ) from None

    def sequential(self, count: int, tick: Tick = _no_tick) -> Sample:
        """``count`` calls, each sent when the previous one has answered."""
        return _sequential(self.call_once, count, tick)

    def pipelined(self, count: int, in_flight: int, tick: Tick = _no_tick) -> Sample:
        """``count`` calls with ``in_flight`` outstanding; a new one goes out as the oldest ends.

        Waiting on the oldest call rather than on whichever answers first costs nothing
        here: the worker answers in order.
        """
        send, n = self._task.delay, self.n
        window: collections.deque[tuple[float, Any]] = collections.deque()
        latencies: list[float] = []
        started = time.perf_counter()
        for _ in range(count):
            if len(window) >= in_flight:
                _finish_oldest(window, latencies, tick)
            window.append((time.perf_counter(), send(n)))
        while window:
            _finish_oldest(window, latencies, tick)
        return Sample(latencies, time.perf_counter() - started)

    def close(self) -> None:
        """Close the app's client."""
        self.app.close()


Driver = BaselineDriver | TaskrpcDriver


def _finish_oldest(
    window: collections.deque[tuple[float, Any]], latencies: list[float], tick: Tick
) -> None:
    sent_at, result = window.popleft()
    result.get()
    latencies.append(time.perf_counter() - sent_at)
    if len(latencies) % TICK_EVERY == 0:
        tick(len(latencies))


def _sequential(call: Callable[[], Any], count: int, tick: Tick) -> Sample:
    latencies: list[float] = []
    clock = time.perf_counter
    started = clock()
    for i in range(1, count + 1):
        t0 = clock()
        call()
        latencies.append(clock() - t0)
        if i % TICK_EVERY == 0:
            tick(i)
    return Sample(latencies, clock() - started)


def check_answer(driver: Driver) -> None:
    """Make one call and check its result.

    Raises:
        BenchmarkError: The answer is wrong.
    """
    value = driver.call_once()
    if value != fib_iter(driver.n):
        raise BenchmarkError(f"{driver.name} answered fib({driver.n}) = {value!r}")
