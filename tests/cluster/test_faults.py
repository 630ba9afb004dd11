"""Faults on a real 3-node RabbitMQ cluster, with quorum task queues.

Each test prints a table: calls made, exact results, typed errors by type, calls hung
past their deadline, duplicate replies delivered to callers, and duplicate executions
counted by the tasks themselves (each execution appends its call number to a file).
Clients and workers use a 2 s heartbeat and list every node, their own first.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from taskrpc import NoQuorum, PoisonRequest
from taskrpc.testing.broker import wait_for_consumers
from taskrpc.urls import mask_url

from .support import (
    Cluster,
    app_for,
    declare_on,
    print_table,
    quorum_env,
    stream,
    unique,
)
from .workers import WorkerGroup

pytestmark = [pytest.mark.broker, pytest.mark.cluster, pytest.mark.timeout(300)]

CALLS = 1000


def start_workers(env: dict[str, str], log_dir: Path, groups: list[WorkerGroup]) -> WorkerGroup:
    log_dir.mkdir(parents=True, exist_ok=True)
    group = WorkerGroup(env, log_dir, 1, "-c", "4")
    groups.append(group)
    return group


@pytest.fixture
def groups():
    started: list[WorkerGroup] = []
    yield started
    for group in started:
        group.stop()


def test_killing_the_node_of_the_client_and_a_worker_then_its_return(
    healthy: Cluster, groups, tmp_path
):
    c1, c2, c3 = healthy.nodes
    queue, dead = unique("cl.kill"), unique("cl.dead")
    on_c1, on_c2 = (quorum_env(healthy.urls(i), queue, dead) for i in (0, 1))
    declare_on(c3, on_c1)  # the leader is elsewhere: this test is about connections
    moved = start_workers(on_c1, tmp_path / "w1", groups)
    start_workers(on_c2, tmp_path / "w2", groups)
    wait_for_consumers(c3.url, queue, count=2, timeout=60)
    with app_for(on_c1) as app:
        (tmp_path / "m1").mkdir()
        tally = stream(app, tmp_path / "m1", CALLS, fault=(CALLS // 3, c1.kill))
        print_table(
            f"kill -9 of the client's and one worker's node during {CALLS} calls "
            "(quorum queue led by another node; second worker on another node)",
            tally.rows(),
        )
        assert tally.hung == 0 and tally.wrong == 0
        assert tally.idempotent_failed == 0
        assert set(tally.errors) <= {"ConnectionLost"}, tally.errors
        assert tally.exact + sum(tally.errors.values()) == CALLS
        # The worker named the node it lost and the next one it connected to.
        log = moved.logs()
        assert f"lost broker node {mask_url(c1.url)}" in log, log
        assert f"connected to broker node {mask_url(c2.url)} (2 of 3)" in log, log

        # The killed node restarts and rejoins; those that moved away keep working.
        started = time.monotonic()
        c1.start()
        healthy.heal()
        rejoined = time.monotonic() - started
        (tmp_path / "m2").mkdir()
        after_return = stream(app, tmp_path / "m2", 200)
    start_workers(on_c1, tmp_path / "w3", groups)  # a new worker on the returned node
    wait_for_consumers(c1.url, queue, count=3, timeout=60)
    with app_for(on_c1) as fresh:  # a new client, on the returned node
        (tmp_path / "m3").mkdir()
        fresh_tally = stream(fresh, tmp_path / "m3", 200)
    print_table(
        "the killed node restarts and rejoins",
        [
            ("seconds until it ran in the cluster again", f"{rejoined:.1f}"),
            ("old client (moved away): calls / exact", f"200 / {after_return.exact}"),
            ("new client and worker on it: calls / exact", f"200 / {fresh_tally.exact}"),
            ("errors", dict(after_return.errors + fresh_tally.errors) or "none"),
        ],
    )
    assert after_return.exact == 200 and fresh_tally.exact == 200


def test_killing_the_quorum_queues_leader_mid_flight(healthy: Cluster, groups, tmp_path):
    c1, c2, c3 = healthy.nodes
    queue, dead = unique("cl.leader"), unique("cl.dead")
    on_c1, on_c2 = (quorum_env(healthy.urls(i), queue, dead) for i in (0, 1))
    declare_on(c3, on_c1)
    assert healthy.leader(queue) is c3
    start_workers(on_c1, tmp_path / "w1", groups)
    start_workers(on_c2, tmp_path / "w2", groups)
    wait_for_consumers(c1.url, queue, count=2, timeout=60)

    with app_for(on_c1) as app:
        tally = stream(app, tmp_path, CALLS, fault=(CALLS // 3, c3.kill))
    new_leader = healthy.leader(queue)
    print_table(
        f"kill -9 of the quorum queue's leader during {CALLS} calls "
        f"(client on c1, workers on c1 and c2; new leader {new_leader.name})",
        tally.rows(),
    )
    assert new_leader is not c3
    assert tally.hung == 0 and tally.wrong == 0 and tally.idempotent_failed == 0
    assert set(tally.errors) <= {"ConnectionLost"}, tally.errors
    assert tally.exact + sum(tally.errors.values()) == CALLS


#: The minority test's confirm timeout and call deadline (seconds).
CONFIRM_TIMEOUT, DEADLINE = 3.0, 30.0


def minority_calls(app, marker: Path) -> list[tuple[str, int, float, BaseException | None]]:
    """Calls of every kind at once, each in its own thread: sync ordinary and idempotent,
    fire-and-forget, asyncio ordinary and idempotent. Each runs ``count`` (appending its
    number to ``marker``); returns ``(kind, number, seconds, error)`` for each."""
    outcomes: list[tuple[str, int, float, BaseException | None]] = []

    def timed(kind: str, n: int, started: float, error: BaseException | None) -> None:
        outcomes.append((kind, n, time.monotonic() - started, error))

    def sync(n: int, kind: str) -> None:
        started, error = time.monotonic(), None
        idempotent = kind == "sync idempotent"
        task = "count_idempotent" if idempotent else "count"
        try:
            if kind == "fire-and-forget":
                app.client.publish(task, [str(marker), n], timeout=DEADLINE)
            else:
                app.client.send(
                    task, [str(marker), n], timeout=DEADLINE, idempotent=idempotent
                ).get()
        except Exception as exc:  # the type is what we record
            error = exc
        timed(kind, n, started, error)

    async def awaited(n: int, idempotent: bool) -> None:
        started, error = time.monotonic(), None
        task = "count_idempotent" if idempotent else "count"
        try:
            call = await app.async_client.send(
                task, [str(marker), n], timeout=DEADLINE, idempotent=idempotent
            )
            await call
        except Exception as exc:
            error = exc
        timed("asyncio idempotent" if idempotent else "asyncio ordinary", n, started, error)

    async def asyncio_calls() -> None:
        await asyncio.gather(awaited(5, False), awaited(6, True))

    kinds = ["sync ordinary", "sync ordinary", "sync idempotent", "sync idempotent"]
    threads = [threading.Thread(target=sync, args=(n, kind)) for n, kind in enumerate(kinds)]
    threads.append(threading.Thread(target=sync, args=(4, "fire-and-forget")))
    threads.append(threading.Thread(target=asyncio.run, args=(asyncio_calls(),)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE + 10)
    return sorted(outcomes, key=lambda outcome: outcome[1])


def test_two_of_three_nodes_stopped_calls_fail_fast_with_no_quorum_then_recover(
    healthy: Cluster, groups, tmp_path
):
    c1, c2, c3 = healthy.nodes
    queue, dead = unique("cl.minority"), unique("cl.dead")
    on_c1 = quorum_env(healthy.urls(0), queue, dead)
    declare_on(c1, on_c1)
    start_workers(on_c1, tmp_path / "w1", groups)
    wait_for_consumers(c1.url, queue, count=1, timeout=60)
    client_env = {**on_c1, "TASKRPC_PUBLISH_CONFIRM_TIMEOUT": f"{CONFIRM_TIMEOUT:g}"}
    marker = tmp_path / "runs"
    with app_for(client_env) as app:
        assert app.send_task("add", [1, 2], timeout=10).get() == 3
        stoppers = [threading.Thread(target=node.stop) for node in (c2, c3)]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        sent = time.monotonic()
        outcomes = minority_calls(app, marker)
        failures = [error for _, _, _, error in outcomes]
        took = [seconds for _, _, seconds, _ in outcomes]
        started, recovered = time.monotonic(), None
        c2.start()
        while recovered is None and time.monotonic() - started < 90:
            try:
                recovered = app.send_task("add", [5, 5], timeout=10).get()
            except Exception:  # noqa: S112 - retried until quorum returns
                continue
        back = time.monotonic() - started
        # The broker held the failed calls' requests: they may run now, before their
        # deadline, but none twice (the client sent none of them again).
        while time.monotonic() < sent + DEADLINE + 2:
            ran = marker.read_text().split() if marker.exists() else []
            if len(ran) >= len(outcomes):
                break
            time.sleep(0.5)
        ran = marker.read_text().split() if marker.exists() else []
    print_table(
        f"two of three nodes stopped (quorum lost), then one restarted; confirm timeout "
        f"{CONFIRM_TIMEOUT:g} s, call deadline {DEADLINE:g} s",
        [
            *(
                (f"{kind} call #{n}", f"{type(error).__name__} after {seconds:.2f} s")
                for kind, n, seconds, error in outcomes
            ),
            ("first error message", str(failures[0])),
            ("seconds from restarting a node until a call succeeded", f"{back:.1f}"),
            (
                "failed calls whose request ran after the quorum returned",
                f"{len(set(ran))} of {len(outcomes)} (numbers {sorted(set(ran))})",
            ),
            ("requests run twice", len(ran) - len(set(ran))),
        ],
    )
    assert len(outcomes) == 7
    assert all(isinstance(error, NoQuorum) for error in failures), failures
    assert "probably has no quorum" in str(failures[0]) and "may still be queued" in str(
        failures[0]
    )
    # Failed at the confirm timeout (timed from the publish, a moment after the caller's
    # clock started, or before: the I/O thread may stamp it with the time it woke), well
    # before their deadline.
    assert all(CONFIRM_TIMEOUT - 0.1 <= seconds < CONFIRM_TIMEOUT + 3 for seconds in took), took
    assert recovered == 10
    assert len(ran) == len(set(ran))  # nothing resent: no request ran twice


def test_a_poison_request_is_dead_lettered_while_workers_on_two_nodes_serve_others(
    healthy: Cluster, groups, tmp_path
):
    c1, c2, c3 = healthy.nodes
    queue, dead = unique("cl.poison"), unique("cl.dead")
    env = {**quorum_env(healthy.urls(0), queue, dead), "TASKRPC_DELIVERY_LIMIT": "2"}
    on_c2 = {**env, "TASKRPC_BROKER_URL": healthy.urls(1)}
    for i, worker_env in enumerate((env, on_c2)):
        (tmp_path / f"w{i}").mkdir()
        groups.append(
            WorkerGroup(worker_env, tmp_path / f"w{i}", 1, "-P", "solo", "--prefetch", "1")
        )
    wait_for_consumers(c3.url, queue, count=2, timeout=60)
    marker = tmp_path / "poison-runs"
    (tmp_path / "m").mkdir()
    with app_for(env) as app:
        started = time.monotonic()
        poison = app.send_task("poison", [str(marker)], timeout=60)
        others = stream(app, tmp_path / "m", 200, window=4)
        with pytest.raises(PoisonRequest) as info:
            poison.get()
        told = time.monotonic() - started
    print_table(
        "a poison request (kills its worker every time), delivery limit 2, solo workers "
        "on c1 and c2 restarted on exit, 200 other calls meanwhile",
        [
            ("poison request runs", len(marker.read_text().split())),
            (
                "its caller's error",
                f"{type(info.value).__name__} (delivery_count {info.value.delivery_count})",
            ),
            ("seconds until its caller knew (deadline 60 s)", f"{told:.1f}"),
            *others.rows(),
        ],
    )
    assert info.value.delivery_count == 3 and len(marker.read_text().split()) == 3
    assert others.exact == 200 and others.hung == 0
