"""``taskrpc bench`` against the cluster: a URL list and quorum queues (a smoke test; the
figures themselves are in the performance guide, measured with larger counts)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .support import Cluster

pytestmark = [pytest.mark.broker, pytest.mark.cluster, pytest.mark.timeout(300)]


def test_bench_runs_on_the_cluster_with_quorum_queues(cluster: Cluster, tmp_path):
    cluster.heal()
    report = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "taskrpc",
            "bench",
            "--broker",
            cluster.urls(0),
            "--queue-type",
            "quorum",
            "--rounds",
            "1",
            "--seq-calls",
            "20",
            "--pipelined-calls",
            "50",
            "--in-flight",
            "10",
            "--warmup",
            "5",
            "--json",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stderr
    assert "quorum queues" in done.stdout
    document = json.loads(report.read_text())
    assert document["config"]["queue_type"] == "quorum"
    assert document["config"]["url"].count("guest:**@") == 3
    assert ":guest@" not in done.stdout + done.stderr + report.read_text()
