"""The 3-node RabbitMQ cluster the fault tests run on, started once per test session.

The fixture is scoped to this package (the only one that uses it), so the nodes run only
while these tests do, not for the rest of the session, and a lock file makes two test
sessions on one machine take turns for the ports.

Nodes ``taskrpc-c1..c3`` listen on 5701-5703 (distribution ports 25701-25703), each with
its own data, logs and cookie under pytest's temporary directory; the shared broker on
5672 is not touched. Without RabbitMQ installed the tests skip, except in CI, where
they fail. Every node is killed and its directory removed after the last of these tests,
even after a failure.
"""

from __future__ import annotations

import fcntl
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrpc.testing.plugin import in_ci
from taskrpc.testing.rabbitnode import rabbitmq_available, start_cluster

from .support import NAMES, PORTS, Cluster


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three clustered RabbitMQ nodes of the tests' own."""
    if not rabbitmq_available():
        reason = "rabbitmq-server is not installed: the cluster tests need it"
        if in_ci():
            pytest.fail(f"{reason}, and CI is set: cluster tests must not skip", pytrace=False)
        pytest.skip(reason)
    with _PortsLock():
        nodes = start_cluster(tmp_path_factory.mktemp("cluster"), NAMES, PORTS)
        try:
            yield Cluster(nodes)
        finally:
            for node in nodes:
                node.remove()


class _PortsLock:
    """Holds an exclusive lock on the cluster's ports, so that two test sessions on one
    machine (say, two checkouts) take turns instead of starting nodes on the same ports."""

    def __init__(self, wait: float = 240.0) -> None:
        self._path = Path(tempfile.gettempdir()) / f"taskrpc-cluster-{PORTS[0]}.lock"
        self._wait = wait

    def __enter__(self) -> None:
        self._file = self._path.open("w")
        deadline = time.monotonic() + self._wait
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if not any(_listening(port) for port in PORTS):
                    return
                fcntl.flock(self._file, fcntl.LOCK_UN)  # nodes of a session without the lock
                raise BlockingIOError
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._file.close()
                    pytest.fail(
                        f"ports {PORTS} stayed taken by another test session ({self._path})"
                    )
                time.sleep(1)

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()  # releases the lock


@pytest.fixture
def healthy(cluster: Cluster) -> Cluster:
    """The cluster with all three nodes running and clustered (restarting any a test left
    down)."""
    cluster.heal()
    return cluster


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
