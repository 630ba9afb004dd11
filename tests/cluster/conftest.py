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
    base = tmp_path_factory.mktemp("cluster")
    with _PortsLock(), _watchdog(base):
        nodes = start_cluster(base, NAMES, PORTS)
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


class _PortsLock:
    """Holds an exclusive lock on the cluster's ports, so that two test sessions on one
    machine (say, two checkouts) take turns instead of starting nodes on the same ports.

    Once it holds the lock it also waits, briefly, for the ports to be free: nodes there
    then belong to no session that takes the lock, e.g. left by a run killed without
    tear-down (before the watchdog existed); it fails saying so rather than using them.
    """

    def __init__(self, wait: float = 240.0, stale_wait: float = 60.0) -> None:
        self._path = Path(tempfile.gettempdir()) / f"taskrpc-cluster-{PORTS[0]}.lock"
        self._wait, self._stale_wait = wait, stale_wait

    def __enter__(self) -> None:
        self._file = self._path.open("w")
        deadline = time.monotonic() + self._wait
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._fail(f"another test session held {self._path} for {self._wait:g} s")
                time.sleep(1)
        deadline = time.monotonic() + self._stale_wait
        while any(_listening(port) for port in PORTS):
            if time.monotonic() > deadline:
                self._fail(
                    f"ports {PORTS} are taken by nodes no test session owns (left by a run "
                    f"killed before tear-down?): stop them with 'rabbitmqctl -n "
                    f"{NAMES[0]}@localhost stop' (and the others), or run on other ports "
                    "with TASKRPC_TEST_CLUSTER_PORT=5711"
                )
            time.sleep(1)

    def _fail(self, reason: str) -> None:
        self._file.close()
        pytest.fail(reason, pytrace=False)

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()  # releases the lock


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
