"""Does CPU-bound work scale with the processes pool? Throughput by pool size, one run.

One ``taskrpc worker -P processes -c K`` per pool size runs at once, each on its own
queue, serving :func:`~taskrpc.benchmarking.tasks.heavy_fib` (tens of ms of pure CPU
that holds the GIL). The client keeps ``in_flight`` calls outstanding (by default twice
the largest pool, so no child waits for work) and spends its time waiting. Rounds
alternate the order of the pools; the figures are medians over rounds, and the ratio is
the largest pool's throughput over the smallest's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from typing import Any

from ..settings import DEFAULT_BROKER_URL, Settings, safe_url
from ..transport import connect
from .drivers import BenchmarkError, Sample, TaskrpcDriver
from .report import Stats
from .runner import Progress
from .servers import START_TIMEOUT, Servers
from .tasks import HEAVY_TASK_NAME, heavy_fib

#: The issue's target: a pool of 2 gives at least this times the throughput of a pool of 1.
SCALING_TARGET = 1.7


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScalingConfig:
    """What to run; counts are calls per pool per round."""

    #: Broker URL.
    url: str = DEFAULT_BROKER_URL
    #: Pool sizes compared; the ratio is the last over the first.
    pools: tuple[int, ...] = (1, 2)
    #: Rounds; the order of the pools alternates.
    rounds: int = 3
    #: Calls per pool per round.
    calls: int = 100
    #: Unmeasured calls per pool before the first round.
    warmup: int = 4
    #: Calls outstanding at once; ``None``: twice the largest pool.
    in_flight: int | None = None
    #: The workers' prefetch; ``None``: their default (``concurrency * prefetch_multiplier``).
    prefetch: int | None = None
    #: Iterations of :func:`~taskrpc.benchmarking.tasks.heavy_fib` per call (~70 ns each).
    n: int = 400_000
    #: Seconds to wait for any one reply before the run is declared failed.
    timeout: float = 60.0

    def window(self) -> int:
        """Calls outstanding at once."""
        return self.in_flight or 2 * max(self.pools)

    def worker_prefetch(self, pool: int) -> int:
        """The prefetch of the worker with ``pool`` processes, as the worker computes it."""
        return self.prefetch or pool * Settings.from_env().prefetch_multiplier


@dataclasses.dataclass
class ScalingResults:
    """Per pool size, every round's figures; and the task's cost measured locally."""

    config: dict[str, Any]
    rounds: dict[int, list[Stats]] = dataclasses.field(default_factory=dict)
    #: Milliseconds one call's work takes in this process (median of a few runs).
    task_ms: float = 0.0
    #: Each worker's prefetch, by pool size.
    prefetch: dict[int, int] = dataclasses.field(default_factory=dict)

    def median(self, pool: int) -> Stats:
        """Median figures over rounds of one pool size."""
        return Stats.median(self.rounds[pool])

    @property
    def ratio(self) -> float:
        """Throughput of the largest pool over the smallest's."""
        pools = list(self.rounds)
        return self.median(pools[-1]).calls_per_s / self.median(pools[0]).calls_per_s

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "pools": {str(k): dataclasses.asdict(self.median(k)) for k in self.rounds},
            "prefetch": {str(k): self.prefetch[k] for k in self.rounds},
            "ratio": self.ratio,
            "target": SCALING_TARGET,
            "met": self.ratio >= SCALING_TARGET,
            "task_ms": self.task_ms,
            "config": self.config,
        }

    def table(self) -> str:
        """The figures as plain text."""
        c = self.config
        ideal = 1000 / self.task_ms if self.task_ms else 0.0
        lines = [
            f"taskrpc scaling: heavy_fib({c['n']:,}) = {self.task_ms:.1f} ms of CPU here "
            f"(ideal {ideal:.1f} calls/s per process); {c['calls']} calls per pool per round, "
            f"{c['rounds']} round(s) (medians), {c['in_flight']} in flight",
            f"{'processes':<12}{'prefetch':>10}{'calls/s':>10}{'p50 ms':>10}{'vs first':>10}",
        ]
        first = self.median(next(iter(self.rounds))).calls_per_s
        for pool in self.rounds:
            stats = self.median(pool)
            lines.append(
                f"{pool:<12}{self.prefetch[pool]:>10}{stats.calls_per_s:>10.1f}{stats.p50_ms:>10.1f}"
                f"{stats.calls_per_s / first:>9.2f}x"
            )
        met = "met" if self.ratio >= SCALING_TARGET else "MISSED"
        lines.append(f"ratio {self.ratio:.2f}x, target >= {SCALING_TARGET}x: {met}")
        return "\n".join(lines)


def run_scaling(config: ScalingConfig, progress: Progress | None = None) -> ScalingResults:
    """Run the scaling benchmark; workers are stopped and queues deleted, even on Ctrl-C.

    Raises:
        BenchmarkError: A worker died, did not start, answered wrongly or too late.
        taskrpc.BrokerError: The broker cannot be reached.
    """
    config = dataclasses.replace(config, in_flight=config.window())
    results = ScalingResults(
        config=dataclasses.asdict(config) | {"url": safe_url(config.url)},
        prefetch={k: config.worker_prefetch(k) for k in config.pools},
    )
    report = progress or _no_progress
    total = len(config.pools) * (config.warmup + config.rounds * config.calls)
    done = 0
    expected, results.task_ms = _local_cost(config.n)
    connect(Settings(broker_url=config.url)).close()  # fail fast, and as a BrokerError
    with contextlib.ExitStack() as stack:
        drivers = {k: _start(stack, config, k) for k in config.pools}
        for pool, (driver, servers) in drivers.items():
            driver.wait_ready(servers.check, START_TIMEOUT)
            if driver.call_once() != expected:
                raise BenchmarkError(f"the pool of {pool} answered heavy_fib wrongly")
            _measure(driver, servers, config.warmup, config.window())
            done += config.warmup
            report(done, total, f"warm-up, {pool} process(es)")
        for number in range(config.rounds):
            order = config.pools if number % 2 == 0 else config.pools[::-1]
            for pool in order:
                driver, servers = drivers[pool]
                label = f"round {number + 1}/{config.rounds}, {pool} process(es)"
                report(done, total, label)
                sample = _measure(driver, servers, config.calls, config.window())
                results.rounds.setdefault(pool, []).append(
                    Stats.of(sample.latencies, sample.elapsed)
                )
                done += config.calls
                report(done, total, label)
    results.rounds = {k: results.rounds[k] for k in config.pools}  # report in config order
    return results


def _start(
    stack: contextlib.ExitStack, config: ScalingConfig, pool: int
) -> tuple[TaskrpcDriver, Servers]:
    servers = stack.enter_context(
        Servers(
            config.url, pool="processes", concurrency=pool, prefetch=config.prefetch, baseline=False
        )
    )
    driver = TaskrpcDriver(
        config.url, servers.taskrpc_queue, config.n, config.timeout, task=HEAVY_TASK_NAME
    )
    stack.callback(driver.close)
    return driver, servers


def _measure(driver: TaskrpcDriver, servers: Servers, count: int, in_flight: int) -> Sample:
    servers.check()
    try:
        return driver.pipelined(count, in_flight)
    except TimeoutError as exc:
        servers.check()  # a dead worker is the better explanation
        raise BenchmarkError(f"no reply in time ({exc})") from exc


def _local_cost(n: int, runs: int = 3) -> tuple[int, float]:
    """``heavy_fib(n)`` and the median milliseconds it takes in this process."""
    times = []
    value = 0
    for _ in range(runs):
        started = time.perf_counter()
        value = heavy_fib(n)
        times.append((time.perf_counter() - started) * 1e3)
    return value, statistics.median(times)


def _no_progress(done: int, total: int, label: str) -> None:
    pass
