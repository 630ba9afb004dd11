"""Running a benchmark: start the servers, warm up, then interleave the contestants."""

from __future__ import annotations

import dataclasses
import functools
import resource
import sys
from collections.abc import Callable

from ..settings import DEFAULT_BROKER_URL, Settings, safe_url
from ..transport import connect
from .drivers import BaselineDriver, BenchmarkError, Driver, Sample, TaskrpcDriver, check_answer
from .report import PHASES, Results, Stats
from .servers import START_TIMEOUT, Servers

#: ``progress(done, total, label)``: called as calls finish, in units of calls.
Progress = Callable[[int, int, str], None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """What to run. Counts are calls per contestant per round."""

    #: Broker URL.
    url: str = DEFAULT_BROKER_URL
    #: Rounds; each runs both phases for both contestants, the order alternating.
    rounds: int = 3
    #: Calls in the sequential phase (one in flight).
    seq_calls: int = 2000
    #: Calls in the pipelined phase.
    pipelined_calls: int = 10_000
    #: Calls outstanding at once in the pipelined phase.
    in_flight: int = 100
    #: Calls per contestant before measuring, not counted.
    warmup: int = 200
    #: The taskrpc worker's pool (measured fastest for this tiny task: solo).
    pool: str = "solo"
    #: The taskrpc worker's concurrency; ``None``: the pool's default.
    concurrency: int | None = None
    #: The taskrpc worker's prefetch; ``None``: the worker's default.
    prefetch: int | None = None
    #: The Fibonacci number computed by every call.
    n: int = 30
    #: Seconds to wait for any one reply before the run is declared failed.
    timeout: float = 30.0
    #: The taskrpc client uses RabbitMQ's direct reply-to instead of its callback queue.
    #: (The baseline keeps the tutorial's exclusive reply queue either way.)
    direct_reply_to: bool = False
    #: The type of both servers' queues: ``"classic"`` or ``"quorum"``.
    queue_type: str = "classic"

    def units(self) -> int:
        """Calls the whole run makes, for progress reporting."""
        return 2 * (self.warmup + self.rounds * (self.seq_calls + self.pipelined_calls))


def run_benchmark(config: BenchConfig, progress: Progress | None = None) -> Results:
    """Run the benchmark described by ``config``; clean up servers and queues, even on Ctrl-C.

    Raises:
        BenchmarkError: A server died, did not start, or answered wrongly.
        taskrpc.BrokerError: The broker cannot be reached.
    """
    results = Results(config=dataclasses.asdict(config) | {"url": safe_url(config.url)})
    meter = _Meter(config.units(), progress)
    connect(Settings(broker_url=config.url)).close()  # fail fast, and as a BrokerError
    with Servers(
        config.url,
        pool=config.pool,
        concurrency=config.concurrency,
        prefetch=config.prefetch,
        queue_type=config.queue_type,
    ) as servers:
        drivers: list[Driver] = []
        try:
            drivers.append(
                BaselineDriver(config.url, servers.baseline_queue, config.n, config.timeout)
            )
            taskrpc = TaskrpcDriver(
                config.url,
                servers.taskrpc_queue,
                config.n,
                config.timeout,
                direct_reply_to=config.direct_reply_to,
                queue_type=config.queue_type,
            )
            drivers.append(taskrpc)
            taskrpc.wait_ready(servers.check, START_TIMEOUT)
            for driver in drivers:
                check_answer(driver)
                _measure(
                    servers,
                    meter,
                    f"warm-up {driver.name}",
                    functools.partial(driver.sequential, config.warmup),
                )
            for number in range(config.rounds):
                order = drivers if number % 2 == 0 else drivers[::-1]
                for phase in PHASES:
                    for driver in order:
                        label = f"round {number + 1}/{config.rounds} {phase} {driver.name}"
                        sample = _measure(servers, meter, label, _phase(config, driver, phase))
                        results.add(phase, driver.name, Stats.of(sample.latencies, sample.elapsed))
            results.client_rss_mb = client_rss_mb()
        finally:
            for driver in drivers:
                driver.close()
    return results


def client_rss_mb() -> float:
    """This process's resident set size in MB (current; peak where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


PhaseRun = Callable[[Callable[[int], None]], Sample]


def _phase(config: BenchConfig, driver: Driver, phase: str) -> PhaseRun:
    if phase == "sequential":
        return lambda tick: driver.sequential(config.seq_calls, tick)
    return lambda tick: driver.pipelined(config.pipelined_calls, config.in_flight, tick)


def _measure(servers: Servers, meter: _Meter, label: str, run: PhaseRun) -> Sample:
    servers.check()
    try:
        sample = run(meter.ticker(label))
    except TimeoutError as exc:  # socket.timeout and taskrpc's TimeoutError alike
        servers.check()  # a dead server is the better explanation
        raise BenchmarkError(f"{label}: no reply in time ({exc})") from exc
    meter.finish(len(sample.latencies), label)
    return sample


class _Meter:
    """Turns per-phase counts into overall progress."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.done = 0
        self._progress = progress

    def ticker(self, label: str) -> Callable[[int], None]:
        base, report = self.done, self._progress
        if report is None:
            return lambda done: None
        report(base, self.total, label)
        return lambda done: report(base + done, self.total, label)

    def finish(self, calls: int, label: str) -> None:
        self.done += calls
        if self._progress is not None:
            self._progress(self.done, self.total, label)
