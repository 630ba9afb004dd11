"""Turning samples into figures: percentiles, medians over rounds, ratios, table, JSON."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

#: Phases in the order they run and are reported.
PHASES = ("sequential", "pipelined")
#: Contestants in report order: the floor first.
IMPLEMENTATIONS = ("baseline", "taskrpc")
#: The issue's targets: sequential p50 at most this times the baseline's...
SEQUENTIAL_P50_TARGET = 1.2
#: ...and pipelined throughput at least this times the baseline's.
PIPELINED_THROUGHPUT_TARGET = 1.0


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclasses.dataclass(frozen=True)
class Stats:
    """One phase of one contestant: latency percentiles (ms) and throughput."""

    p50_ms: float
    p99_ms: float
    calls_per_s: float

    @classmethod
    def of(cls, latencies: list[float], elapsed: float) -> Stats:
        """Summarise latencies (seconds) of calls made over ``elapsed`` seconds."""
        ordered = sorted(latencies)
        return cls(
            p50_ms=percentile(ordered, 0.50) * 1e3,
            p99_ms=percentile(ordered, 0.99) * 1e3,
            calls_per_s=len(ordered) / elapsed,
        )

    @classmethod
    def median(cls, rounds: list[Stats]) -> Stats:
        """The median of each figure over rounds."""
        return cls(
            p50_ms=statistics.median(s.p50_ms for s in rounds),
            p99_ms=statistics.median(s.p99_ms for s in rounds),
            calls_per_s=statistics.median(s.calls_per_s for s in rounds),
        )


@dataclasses.dataclass
class Results:
    """Every round's figures, and what the run was configured with."""

    config: dict[str, Any]
    rounds: dict[tuple[str, str], list[Stats]] = dataclasses.field(default_factory=dict)
    client_rss_mb: float = 0.0

    def add(self, phase: str, implementation: str, stats: Stats) -> None:
        """Record one round of one phase."""
        self.rounds.setdefault((phase, implementation), []).append(stats)

    def median(self, phase: str, implementation: str) -> Stats:
        """Median figures over rounds."""
        return Stats.median(self.rounds[(phase, implementation)])

    def ratio(self, phase: str) -> float:
        """taskrpc / baseline: p50 latency (sequential) or throughput (pipelined)."""
        field = "p50_ms" if phase == "sequential" else "calls_per_s"
        ours, floor = (getattr(self.median(phase, i), field) for i in ("taskrpc", "baseline"))
        return float(ours / floor)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        document: dict[str, Any] = {}
        for phase in PHASES:
            entry: dict[str, Any] = {
                name: dataclasses.asdict(self.median(phase, name)) for name in IMPLEMENTATIONS
            }
            entry["ratio"] = self.ratio(phase)
            document[phase] = entry
        document["client_rss_mb"] = self.client_rss_mb
        document["config"] = self.config
        return document

    def table(self) -> str:
        """A plain-text table of medians and taskrpc/baseline ratios."""
        config = self.config
        worker = f"pool={config['pool']}"
        if config.get("concurrency"):
            worker += f" concurrency={config['concurrency']}"
        if config.get("prefetch"):
            worker += f" prefetch={config['prefetch']}"
        if config.get("direct_reply_to"):
            worker += ", taskrpc replies by direct reply-to"
        if config.get("queue_type", "classic") != "classic":
            worker += f", {config['queue_type']} queues"
        lines = [
            f"taskrpc bench: fib({config['n']}), {worker}, {config['rounds']} round(s) "
            f"(medians); pipelined with {config['in_flight']} in flight",
            f"{'':24}{'baseline':>10}{'taskrpc':>10}{'ratio':>8}",
        ]
        for phase in PHASES:
            for field, label in (
                ("p50_ms", "p50 ms"),
                ("p99_ms", "p99 ms"),
                ("calls_per_s", "calls/s"),
            ):
                floor, ours = (getattr(self.median(phase, i), field) for i in IMPLEMENTATIONS)
                lines.append(
                    f"{phase + ' ' + label:<24}{floor:>10.{_digits(field)}f}"
                    f"{ours:>10.{_digits(field)}f}{ours / floor:>7.2f}x{self._note(phase, field)}"
                )
        lines.append(f"client RSS: {self.client_rss_mb:.1f} MB")
        return "\n".join(lines)

    def _note(self, phase: str, field: str) -> str:
        """After the ratio the issue sets a target for: the target, and whether it is met."""
        if phase == "sequential" and field == "p50_ms":
            met = self.ratio(phase) <= SEQUENTIAL_P50_TARGET
            target = f"<= {SEQUENTIAL_P50_TARGET}x"
        elif phase == "pipelined" and field == "calls_per_s":
            met = self.ratio(phase) >= PIPELINED_THROUGHPUT_TARGET
            target = f">= {PIPELINED_THROUGHPUT_TARGET}x"
        else:
            return ""
        return f"  target {target}: {'met' if met else 'MISSED'}"


def _digits(field: str) -> int:
    return 0 if field == "calls_per_s" else 3
