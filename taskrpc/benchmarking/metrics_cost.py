"""What metrics cost: two taskrpc workers, one with metrics and one without, in one run.

Each side has its own worker process and client; the side with metrics serves them
(``--metrics-port``) and its client counts through :class:`~taskrpc.metrics.ClientMetrics`.
Rounds alternate the order; figures are medians over rounds, as in ``taskrpc bench``.
"""

from __future__ import annotations

import dataclasses
import socket
import urllib.request
from collections.abc import Callable
from typing import Any

from ..settings import safe_url
from .drivers import TaskrpcDriver, check_answer
from .report import PHASES, Stats
from .servers import START_TIMEOUT, Servers

#: Names of the two sides, as reported.
OFF, ON = "metrics off", "metrics on"


@dataclasses.dataclass
class CostReport:
    """Per phase and side, the rounds' figures; the table and JSON of ``bench-metrics``."""

    config: dict[str, Any]
    rounds: dict[tuple[str, str], list[Stats]] = dataclasses.field(default_factory=dict)
    #: Requests the metrics side's worker counted (a check that it did count).
    counted: float = 0.0

    def median(self, phase: str, side: str) -> Stats:
        return Stats.median(self.rounds[(phase, side)])

    def cost(self, phase: str) -> float:
        """Throughput lost with metrics on, as a fraction (0.03 is 3 %)."""
        off, on = (self.median(phase, side).calls_per_s for side in (OFF, ON))
        return 1 - on / off

    def table(self) -> str:
        lines = [
            f"taskrpc bench-metrics: pool={self.config['pool']}, {self.config['rounds']} "
            f"round(s) (medians); pipelined with {self.config['in_flight']} in flight",
            f"{'':24}{OFF:>12}{ON:>12}{'cost':>8}",
        ]
        for phase in PHASES:
            off, on = self.median(phase, OFF), self.median(phase, ON)
            lines.append(
                f"{phase + ' calls/s':<24}{off.calls_per_s:>12.0f}{on.calls_per_s:>12.0f}"
                f"{100 * self.cost(phase):>7.1f}%"
            )
            lines.append(f"{phase + ' p50 ms':<24}{off.p50_ms:>12.3f}{on.p50_ms:>12.3f}")
        lines.append(f"requests counted by the metrics worker: {self.counted:.0f}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"config": self.config, "counted": self.counted}
        for phase in PHASES:
            document[phase] = {
                OFF: dataclasses.asdict(self.median(phase, OFF)),
                ON: dataclasses.asdict(self.median(phase, ON)),
                "cost": self.cost(phase),
            }
        return document


def run_metrics_cost(
    url: str,
    *,
    rounds: int = 3,
    seq_calls: int = 1000,
    pipelined_calls: int = 5000,
    in_flight: int = 100,
    pool: str = "solo",
    progress: Callable[[int, int, str], None] | None = None,
) -> CostReport:
    """Run both sides; see the module docstring."""
    from prometheus_client import CollectorRegistry

    from ..metrics import ClientMetrics

    config = {
        "url": safe_url(url),
        "rounds": rounds,
        "seq_calls": seq_calls,
        "pipelined_calls": pipelined_calls,
        "in_flight": in_flight,
        "pool": pool,
    }
    report = CostReport(config)
    port = _free_port()
    total = 2 * rounds * (seq_calls + pipelined_calls)
    done = 0
    with (
        Servers(url, pool=pool, concurrency=None, prefetch=100, baseline=False) as plain,
        Servers(
            url,
            pool=pool,
            concurrency=None,
            prefetch=100,
            baseline=False,
            worker_args=("--metrics-port", str(port)),
        ) as measured,
    ):
        off = TaskrpcDriver(url, plain.taskrpc_queue, 30, 30.0)
        on = TaskrpcDriver(url, measured.taskrpc_queue, 30, 30.0)
        on.app.add_middleware(ClientMetrics(CollectorRegistry()))  # before its client connects
        sides: list[tuple[str, TaskrpcDriver, Servers]] = [(OFF, off, plain), (ON, on, measured)]
        try:
            for _, driver, servers in sides:
                driver.wait_ready(servers.check, START_TIMEOUT)
                check_answer(driver)
                driver.sequential(200)  # warm-up
            for number in range(rounds):
                order = sides if number % 2 == 0 else sides[::-1]
                for phase in PHASES:
                    for side, driver, servers in order:
                        servers.check()
                        sample = (
                            driver.sequential(seq_calls)
                            if phase == "sequential"
                            else driver.pipelined(pipelined_calls, in_flight)
                        )
                        stats = Stats.of(sample.latencies, sample.elapsed)
                        report.rounds.setdefault((phase, side), []).append(stats)
                        done += len(sample.latencies)
                        if progress is not None:
                            progress(done, total, f"round {number + 1} {phase} {side}")
            report.counted = _counted(port)
        finally:
            off.close()
            on.close()
    return report


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _counted(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("taskrpc_worker_received_total{")
    )
