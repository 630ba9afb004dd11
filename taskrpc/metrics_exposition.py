"""How taskrpc's metrics reach Prometheus (the ``taskrpc[metrics]`` extra).

``prometheus_client`` imported on first use (it is optional), the collector that reads a
worker's rejection counts at each scrape, and the HTTP server behind
``taskrpc worker --metrics-port``. The metrics themselves are defined in
:mod:`taskrpc.metrics`, which is where to import :func:`serve_metrics` from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


def load_prometheus() -> Any:
    """``prometheus_client``, or a :class:`~taskrpc.exceptions.ConfigurationError` naming
    the extra that installs it."""
    try:
        import prometheus_client
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "metrics need prometheus-client: pip install 'taskrpc[metrics]'"
        ) from None
    return prometheus_client


class RejectionsCollector:
    """``taskrpc_worker_rejected_total{reason}``, read from the worker's own counts."""

    def __init__(self, rejections: Any) -> None:
        self._rejections = rejections

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            "taskrpc_worker_rejected",
            "Deliveries rejected without requeue (dead-lettered), by reason.",
            labels=("reason",),
        )
        for reason, count in sorted(self._rejections.counts().items()):
            family.add_metric((reason,), count)
        yield family


def serve_metrics(
    port: int, address: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> Any:
    """Serve ``registry`` (the default one) on ``http://address:port/metrics`` from a
    daemon thread; returns the server (``server.shutdown()`` stops it)."""
    prom = load_prometheus()
    server, _thread = prom.start_http_server(
        port, addr=address, registry=registry if registry is not None else prom.REGISTRY
    )
    return server
