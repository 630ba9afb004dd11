"""Delayed requests held by the broker's delay cascade: on time, in order, and
independent of the workers (which may restart while the requests wait)."""

from __future__ import annotations

import random
import signal
import time

import pytest

from taskrpc import App, ConfigurationError, gather
from taskrpc.delays import LEVELS, destination, routing_key

pytestmark = pytest.mark.broker

CALLS = 200
LONGEST = 20.0
#: Lateness allowed: the cascade's hops, the worker's start-up of a request, a busy CI.
LATE = 1.0
#: Requests due closer together than this may arrive in either order.
ORDER = 0.5


@pytest.fixture
def jobs(broker_url: str, unique_queue: str):
    app = App("jobs", broker_url=broker_url, default_queue=unique_queue)
    from tests.apps.jobs import arrival

    app.tasks[arrival.name] = arrival  # the same task, called through this test's app
    yield app
    app.close()


@pytest.mark.timeout(120)
def test_random_delays_arrive_in_due_order_on_time_across_a_worker_restart(
    jobs: App, spawn_worker
):
    first = spawn_worker("--concurrency", "8", app="tests.apps.jobs:app")
    rng = random.Random(13)
    calls = []
    for n in range(CALLS):
        delay = rng.uniform(0, LONGEST)
        before = time.time()
        handle = jobs.send_task("arrival", [n], countdown=delay, timeout=60)
        calls.append((before + delay, time.time() + delay, handle))
    time.sleep(LONGEST / 3)
    spawn_worker("--concurrency", "8", app="tests.apps.jobs:app")  # then lose the first
    first.signal(signal.SIGKILL)
    first.wait()
    arrivals = gather([handle for _, _, handle in calls], timeout=LONGEST + 40)
    early = [(due, got) for (due, _, _), got in zip(calls, arrivals, strict=True) if got < due]
    late = [
        (round(got - due, 3), due)
        for (_, due, _), got in zip(calls, arrivals, strict=True)
        if got > due + LATE
    ]
    assert early == [], f"{len(early)} early: {early[:5]}"
    assert late == [], f"{len(late)} late: {late[:5]}"
    # In due order: each hop of the cascade adds a few ms of its own, so only requests
    # due within ORDER of each other may swap.
    by_arrival = sorted(zip(arrivals, (due for due, _, _ in calls), strict=True))
    dues = [due for _, due in by_arrival]
    swapped = [(a, b) for a, b in zip(dues, dues[1:], strict=False) if b < a - ORDER]
    assert swapped == [], f"{len(swapped)} out of order: {swapped[:5]}"
    lateness = sorted(got - due for (due, _, _), got in zip(calls, arrivals, strict=True))
    print(f"lateness: median {lateness[CALLS // 2]:.3f} s, max {lateness[-1]:.3f} s")


def test_a_routing_key_spells_the_delay_in_binary_before_the_queue():
    key = routing_key(5, "orders.eu")
    assert key == "0." * (LEVELS - 3) + "1.0.1.orders.eu"
    assert destination(key) == "orders.eu" and destination("orders.eu") == "orders.eu"


def test_countdown_and_eta_together_or_too_far_are_refused_here(jobs: App):
    from datetime import datetime, timezone

    task = jobs.get_task("arrival")
    with pytest.raises(ConfigurationError, match="not both"):
        task.apply_async((1,), countdown=1, eta=datetime.now(timezone.utc))
    with pytest.raises(ConfigurationError, match="too long"):
        task.apply_async((1,), countdown=10**12)
