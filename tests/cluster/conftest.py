"""The 3-node RabbitMQ cluster the fault tests run on, started once per session.

Nodes ``taskrpc-c1..c3`` listen on 5701-5703 (distribution ports 25701-25703), each with
its own data, logs and cookie under pytest's temporary directory; the shared broker on
5672 is not touched. Without RabbitMQ installed the tests skip, except in CI, where
they fail. Every node is killed and its directory removed at the end of the session,
even after a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from taskrpc.testing.plugin import in_ci
from taskrpc.testing.rabbitnode import rabbitmq_available, start_cluster

from .support import NAMES, PORTS, Cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three clustered RabbitMQ nodes of the tests' own."""
    if not rabbitmq_available():
        reason = "rabbitmq-server is not installed: the cluster tests need it"
        if in_ci():
            pytest.fail(f"{reason}, and CI is set: cluster tests must not skip", pytrace=False)
        pytest.skip(reason)
    nodes = start_cluster(tmp_path_factory.mktemp("cluster"), NAMES, PORTS)
    try:
        yield Cluster(nodes)
    finally:
        for node in nodes:
            node.remove()


@pytest.fixture
def healthy(cluster: Cluster) -> Cluster:
    """The cluster with all three nodes running and clustered (restarting any a test left
    down)."""
    cluster.heal()
    return cluster
