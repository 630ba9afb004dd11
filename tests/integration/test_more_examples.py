"""The retries, asyncio and several-workers examples run as their READMEs say.

Like ``test_examples.py``: each test starts ``python -m taskrpc worker`` subprocesses on a
queue of its own (``TASKRPC_DEFAULT_QUEUE``), waits until the broker reports them as
consumers, runs the example's client as another subprocess, checks what it printed, then
stops the workers with SIGTERM and expects each to exit with status 0.
"""

from __future__ import annotations

import re

import pytest

from taskrpc.testing.broker import queue_state

from .examples_support import EXAMPLES, StartWorker, example_env, run, shown

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


def test_retries_timeouts_example_retries_limits_and_keeps_deadlines(
    start_worker_process: StartWorker, broker_url: str, unique_queue: str
) -> None:
    cwd = EXAMPLES / "retries_timeouts"
    worker = start_worker_process("tasks:app", cwd, "--pool", "processes", "--concurrency", "2")

    result = run("client.py", cwd=cwd, env=example_env(broker_url, unique_queue))

    assert result.returncode == 0, shown(result)
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"retried: EUR: 1\.0842 after 2 retries  \[\d+\.\d s\]", lines[0])
    assert lines[1:8] == [
        "gave up: ConnectionError: rates service unreachable (try 4)  (a RemoteError too: True)",
        "deadline first: ConnectionError: rates service unreachable (try 2)",
        "not retried: ValueError: could not convert string to float: 'n/a'",
        "soft limit, caught: partial report: 2 of 10 pages",
        "soft limit, not reached: full report: 2 pages",
        "hard limit: TimeLimitExceeded: report.stuck ran past its hard time limit of 1.5 s; killed",
        "not started: TimeoutError at the deadline, started=None",
    ]
    assert re.fullmatch(
        r"  asked again once the worker answered: started=False \(DeadlineExceeded: request "
        r"[0-9a-f]{32} reached the worker after its deadline; not run\)",
        lines[8],
    ), shown(result)
    assert lines[9:] == ["gave up waiting: started=None; the task goes on running on the worker"]
    # The last call may still run when SIGTERM lands: the worker finishes it first.
    assert worker.stop() == 0, worker.output()
    log = worker.output()
    assert "retry 1/3 in 0.20 s" in log and "retry 3/3 in 0.80 s" in log
    assert "lost report.stuck" in log  # the killed pool process
    assert "reached the worker after its deadline; not run" in log


def test_asyncio_example_awaits_and_gathers_calls(
    start_worker_process: StartWorker, broker_url: str, unique_queue: str
) -> None:
    cwd = EXAMPLES / "asyncio_client"
    worker = start_worker_process("tasks:app", cwd, "--concurrency", "8")

    result = run("client.py", cwd=cwd, env=example_env(broker_url, unique_queue))

    assert result.returncode == 0, shown(result)
    lines = result.stdout.splitlines()
    assert lines[0] == "one call: apple costs 0.40 (Decimal)"
    gathered = re.fullmatch(
        r"gathered 30 lookups in (\d+\.\d) s \(one after another: at least 6\.0 s\)", lines[1]
    )
    assert gathered and float(gathered[1]) < 6.0, shown(result)  # they ran side by side
    ticks = re.fullmatch(r"  the event loop ran a 50 ms heartbeat (\d+) times meanwhile", lines[2])
    assert ticks and int(ticks[1]) >= 1, shown(result)  # never blocked while waiting
    assert lines[3:8] == [
        "  sum: 12.00",
        "handle: prices.total -> 2.85",
        "by name: '1.00' (plain JSON data: the caller does not know the type)",
        "remote error: KeyError: 'kiwi'",
        "invalid arguments: Input should be a valid string",
    ]
    assert re.fullmatch(
        r"timeout: no reply for prices\.lookup \[[0-9a-f]{32}\]: its deadline passed", lines[8]
    ), shown(result)
    assert worker.stop() == 0, worker.output()


def test_several_workers_share_the_calls_and_a_stopped_one_loses_none(
    start_worker_process: StartWorker, broker_url: str, unique_queue: str
) -> None:
    cwd = EXAMPLES / "several_workers"
    workers = {
        worker.pid: worker
        for worker in (start_worker_process("tasks:app", cwd, "--concurrency", "2") for _ in "abc")
    }

    result = run(
        "client.py",
        "--calls",
        "300",
        "--stop-one",
        cwd=cwd,
        env=example_env(broker_url, unique_queue),
    )

    assert result.returncode == 0, shown(result)
    out = result.stdout
    stopped = re.match(r"sent SIGTERM to worker (\d+) after 100 results\n", out)
    assert stopped, shown(result)
    victim = workers[int(stopped[1])]
    assert victim.wait() == 0, victim.output()  # SIGTERM: a graceful stop, status 0
    assert "stopped consuming; finishing" in victim.output()
    served = dict(re.findall(r"^worker (\d+): (\d+) calls", out, re.MULTILINE))
    assert set(map(int, served)) == set(workers), shown(result)  # all three took calls
    assert sum(map(int, served.values())) == 300
    assert f"worker {victim.pid}: {served[str(victim.pid)]} calls  (stopped)" in out
    assert out.rstrip().endswith("300 calls, 300 results from 3 workers: none lost"), shown(result)

    survivors = [worker for pid, worker in workers.items() if pid != victim.pid]
    assert queue_state(broker_url, unique_queue) == (0, 2)  # nothing left, two consumers
    for worker in survivors:
        assert worker.stop() == 0, worker.output()
