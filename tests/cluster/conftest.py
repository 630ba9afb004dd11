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

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrpc.testing.plugin import in_ci
from taskrpc.testing.rabbitnode import rabbitmq_available, start_cluster

from .support import FIRST_PORT, SPARE_PORTS, Cluster, cluster_names


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three clustered RabbitMQ nodes of the tests' own."""
    if not rabbitmq_available():
        reason = "rabbitmq-server is not installed: the cluster tests need it"
        if in_ci():
            pytest.fail(f"{reason}, and CI is set: cluster tests must not skip", pytrace=False)
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("cluster")
    with _claim_ports() as (names, ports), _watchdog(base):
        nodes = start_cluster(base, names, ports)
        try:
            yield Cluster(nodes)
        finally:
            for node in nodes:
                node.remove()


#: Run beside the tests: once the test process is gone (killed by a timeout, say, with no
#: chance to tear down), kill the nodes' Erlang VMs, found by their pid files.
_WATCHDOG = """
import glob, os, signal, sys, time
owner, base = int(sys.argv[1]), sys.argv[2]
while True:
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        break
    time.sleep(1)
for path in glob.glob(os.path.join(base, "*", "rabbitmq.pid")):
    try:
        os.kill(int(open(path).read().strip()), signal.SIGKILL)
    except (OSError, ValueError):
        pass
"""


@contextlib.contextmanager
def _watchdog(base: Path) -> Iterator[None]:
    """Make sure the nodes die with this test process, even if it cannot tear down."""
    watcher = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(base)],
        start_new_session=True,  # a signal to the tests' process group spares it
    )
    try:
        yield
    finally:
        watcher.kill()
        watcher.wait(10)


@contextlib.contextmanager
def _claim_ports() -> Iterator[tuple[list[str], list[int]]]:
    """Node names and ports for this session's cluster, held under a lock file.

    The lock makes two test sessions on one machine (two checkouts, say) take turns for
    the ports. If, once locked, the ports are still taken, the nodes there belong to no
    session that takes the lock (left by a run killed before tear-down): after a short
    wait the cluster moves to spare ports, with a warning, instead of failing.
    """
    for first in (FIRST_PORT, *SPARE_PORTS):
        with _lock(first, wait=240.0 if first == FIRST_PORT else 0.0) as locked:
            if not locked:
                continue
            ports = [first, first + 1, first + 2]
            wait = 30.0 if first == FIRST_PORT else 0.0
            deadline = time.monotonic() + wait
            while any(_listening(port) for port in ports) and time.monotonic() < deadline:
                time.sleep(1)
            if any(_listening(port) for port in ports):
                warnings.warn(
                    f"ports {ports} are taken by RabbitMQ nodes no test session owns (left "
                    f"by a killed run?); the cluster uses other ports",
                    stacklevel=1,
                )
                continue
            yield cluster_names(first), ports
            return
    pytest.fail(f"no free ports for the cluster among {FIRST_PORT} and {SPARE_PORTS}")


@contextlib.contextmanager
def _lock(first: int, wait: float) -> Iterator[bool]:
    """Hold the lock file of the ports from ``first``; ``False`` if not got in ``wait`` s."""
    path = Path(tempfile.gettempdir()) / f"taskrpc-cluster-{first}.lock"
    with path.open("w") as file:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(1)
        yield True  # closing the file releases the lock


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def healthy(cluster: Cluster) -> Cluster:
    """The cluster with all three nodes running and clustered (restarting any a test left
    down)."""
    cluster.heal()
    return cluster
