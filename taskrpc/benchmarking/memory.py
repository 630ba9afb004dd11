"""Does a long-lived client keep flat memory? Many pipelined calls, RSS sampled as they go.

One client makes ``warmup`` calls, then ``calls`` more, keeping ``in_flight`` outstanding,
against a ``taskrpc worker`` of its own. The client's RSS (and the worker's) is read after
the warm-up, every ``sample_every`` calls and at the end, each time after a full garbage
collection; the growth is the end figure minus the post-warm-up one. Nothing per call is
kept by the measuring loop itself, so whatever grows is the client's.

With ``trace``, :mod:`tracemalloc` also runs (several times slower) and the lines whose
live allocations grew most after the warm-up are reported, as ``file:line``.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

from ..settings import DEFAULT_BROKER_URL, Settings, safe_url
from ..transport import connect
from .drivers import BenchmarkError, TaskrpcDriver, check_answer
from .runner import Progress, client_rss_mb
from .servers import START_TIMEOUT, Servers

#: The issue's target: RSS growth after the warm-up stays under this many MB.
GROWTH_LIMIT_MB = 10.0
#: Lines reported from a tracemalloc comparison.
TRACE_TOP = 10


@dataclasses.dataclass(frozen=True, kw_only=True)
class MemoryConfig:
    """What to run: counts are calls."""

    #: Broker URL.
    url: str = DEFAULT_BROKER_URL
    #: Measured calls, after the warm-up.
    calls: int = 200_000
    #: Unmeasured calls first: buffers, caches and the duplicate window fill up.
    warmup: int = 20_000
    #: Calls outstanding at once.
    in_flight: int = 100
    #: Calls between two RSS samples.
    sample_every: int = 20_000
    #: The worker's pool, concurrency (``None``: the pool's) and prefetch.
    pool: str = "solo"
    concurrency: int | None = None
    prefetch: int | None = 100
    #: The Fibonacci number computed by every call.
    n: int = 30
    #: The client uses RabbitMQ's direct reply-to instead of its callback queue.
    direct_reply_to: bool = False
    #: Also run tracemalloc and report the lines whose allocations grew most.
    trace: bool = False
    #: Seconds to wait for any one reply before the run is declared failed.
    timeout: float = 30.0


@dataclasses.dataclass
class MemoryResults:
    """RSS figures of one run, in MB; ``samples`` are ``(calls after warm-up, client RSS)``."""

    config: dict[str, Any]
    rss_after_warmup_mb: float = 0.0
    rss_end_mb: float = 0.0
    worker_rss_after_warmup_mb: float = 0.0
    worker_rss_end_mb: float = 0.0
    samples: list[tuple[int, float]] = dataclasses.field(default_factory=list)
    #: With ``trace``: ``{"where": "file:line", "size_kb": ..., "count": ...}`` growths.
    top_growth: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: With ``trace``: growth of the live Python allocations tracemalloc saw, in KB.
    traced_growth_kb: float | None = None
    unknown_replies: int = 0

    @property
    def growth_mb(self) -> float:
        """Client RSS at the end minus after the warm-up."""
        return self.rss_end_mb - self.rss_after_warmup_mb

    @property
    def flat(self) -> bool:
        """Whether the growth is under :data:`GROWTH_LIMIT_MB`."""
        return self.growth_mb < GROWTH_LIMIT_MB

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "client": {
                "rss_after_warmup_mb": self.rss_after_warmup_mb,
                "rss_end_mb": self.rss_end_mb,
                "growth_mb": self.growth_mb,
            },
            "worker": {
                "rss_after_warmup_mb": self.worker_rss_after_warmup_mb,
                "rss_end_mb": self.worker_rss_end_mb,
                "growth_mb": self.worker_rss_end_mb - self.worker_rss_after_warmup_mb,
            },
            "limit_mb": GROWTH_LIMIT_MB,
            "flat": self.flat,
            "samples": [{"calls": calls, "rss_mb": rss} for calls, rss in self.samples],
            "top_growth": self.top_growth,
            "traced_growth_kb": self.traced_growth_kb,
            "unknown_replies": self.unknown_replies,
            "config": self.config,
        }

    def table(self) -> str:
        """The figures as plain text."""
        c = self.config
        verdict = "flat" if self.flat else "GROWS"
        lines = [
            f"taskrpc memory: {c['warmup']:,} warm-up + {c['calls']:,} calls of fib({c['n']}), "
            f"{c['in_flight']} in flight, pool={c['pool']} prefetch={c['prefetch']}",
            f"{'':22}{'warm-up':>10}{'end':>10}{'growth':>10}",
            _row("client RSS MB", self.rss_after_warmup_mb, self.rss_end_mb),
            _row("worker RSS MB", self.worker_rss_after_warmup_mb, self.worker_rss_end_mb),
            f"client growth {self.growth_mb:+.1f} MB, target < {GROWTH_LIMIT_MB:g} MB: {verdict}",
            "samples (calls: MB): "
            + ", ".join(f"{calls:,}: {rss:.1f}" for calls, rss in self.samples),
        ]
        if self.traced_growth_kb is not None:
            lines.append(
                f"tracemalloc: Python allocations grew {self.traced_growth_kb:+.1f} KB "
                "(RSS figures include tracemalloc's own bookkeeping); top lines:"
            )
        for entry in self.top_growth:
            lines.append(f"  {entry['size_kb']:+10.1f} KB {entry['count']:+8d}  {entry['where']}")
        return "\n".join(lines)


def _row(label: str, start: float, end: float) -> str:
    return f"{label:<22}{start:>10.1f}{end:>10.1f}{end - start:>+10.1f}"


def run_memory(config: MemoryConfig, progress: Progress | None = None) -> MemoryResults:
    """Run the memory benchmark; the worker is stopped and its queue deleted, even on Ctrl-C.

    Raises:
        BenchmarkError: The worker died, did not start, answered wrongly or too late.
        taskrpc.BrokerError: The broker cannot be reached.
    """
    results = MemoryResults(config=dataclasses.asdict(config) | {"url": safe_url(config.url)})
    connect(Settings(broker_url=config.url)).close()  # fail fast, and as a BrokerError
    servers = Servers(
        config.url,
        pool=config.pool,
        concurrency=config.concurrency,
        prefetch=config.prefetch,
        baseline=False,
    )
    with servers:
        driver = TaskrpcDriver(
            config.url,
            servers.taskrpc_queue,
            config.n,
            config.timeout,
            direct_reply_to=config.direct_reply_to,
        )
        try:
            driver.wait_ready(servers.check, START_TIMEOUT)
            check_answer(driver)
            _run_phases(config, driver, servers, results, progress or _no_progress)
            results.unknown_replies = driver.app.client.unknown_replies
        except TimeoutError as exc:
            servers.check()  # a dead worker is the better explanation
            raise BenchmarkError(f"no reply in time ({exc})") from exc
        finally:
            driver.close()
            if tracemalloc.is_tracing():
                tracemalloc.stop()
    return results


def _run_phases(
    config: MemoryConfig,
    driver: TaskrpcDriver,
    servers: Servers,
    results: MemoryResults,
    progress: Progress,
) -> None:
    total = config.warmup + config.calls
    if config.trace:
        tracemalloc.start(1)
    _pipeline(driver, config.warmup, config.in_flight, lambda d: progress(d, total, "warm-up"))
    rss = _settled_rss()
    results.rss_after_warmup_mb = rss
    results.worker_rss_after_warmup_mb = process_rss_mb(servers.worker_pid)
    results.samples.append((0, rss))
    before = tracemalloc.take_snapshot() if config.trace else None
    done = 0
    while done < config.calls:
        batch = min(config.sample_every, config.calls - done)
        base = config.warmup + done
        tick = functools.partial(_advance, progress, base, total)
        _pipeline(driver, batch, config.in_flight, tick)
        servers.check()
        done += batch
        results.samples.append((done, _settled_rss()))
    results.rss_end_mb = results.samples[-1][1]
    results.worker_rss_end_mb = process_rss_mb(servers.worker_pid)
    if before is not None:
        after = tracemalloc.take_snapshot()
        results.top_growth, results.traced_growth_kb = _top_growth(before, after)


def _advance(progress: Callable[[int, int, str], None], base: int, total: int, done: int) -> None:
    progress(base + done, total, "run")


def _pipeline(
    driver: TaskrpcDriver, count: int, in_flight: int, tick: Callable[[int], None]
) -> None:
    """``count`` calls, ``in_flight`` outstanding, keeping nothing once a call has answered."""
    window: collections.deque[Any] = collections.deque()
    send = driver.send
    for sent in range(count):
        if len(window) >= in_flight:
            window.popleft().get()
        window.append(send())
        if sent % 1000 == 0:
            tick(sent)
    while window:
        window.popleft().get()
    tick(count)


def _settled_rss() -> float:
    gc.collect()
    return client_rss_mb()


def process_rss_mb(pid: int | None) -> float:
    """Resident set size of process ``pid`` in MB; 0.0 where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, TypeError):
        pass
    return 0.0


def _top_growth(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot
) -> tuple[list[dict[str, Any]], float]:
    """The lines whose live allocations grew most, and the total growth in KB."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diffs = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    top = []
    for diff in diffs[:TRACE_TOP]:
        frame = diff.traceback[0]
        top.append(
            {
                "where": f"{frame.filename}:{frame.lineno}",
                "size_kb": diff.size_diff / 1024,
                "count": diff.count_diff,
            }
        )
    return top, sum(diff.size_diff for diff in diffs) / 1024


def _no_progress(done: int, total: int, label: str) -> None:
    pass
