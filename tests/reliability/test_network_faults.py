"""Network faults between client or worker and the broker, through :mod:`taskrpc.testing.proxy`.

Heartbeats are set short (``TASKRPC_BROKER_HEARTBEAT=2``) so a dead link is noticed in
seconds. Each test prints a table of how its calls ended: ``ok`` (the right answer),
typed errors by type (in time: allowed where the test says so), wrong answers, calls
that hung past their deadline, and lost results (calls that should have been answered
and were not). Workers are real processes serving ``tests.apps.sample``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from taskrpc import App, ConnectionLost, TaskRPCError
from taskrpc.testing.broker import queue_state
from taskrpc.testing.proxy import Direction, Fault, FaultProxy
from tests.netsupport import Call, CallStream, Tally, Worker, wait_until

pytestmark = pytest.mark.broker

#: Heartbeat interval of every connection in these tests (seconds).
HEARTBEAT = 2  # whole seconds, as AMQP negotiates them
#: Deadline of the calls of the stream (seconds).
DEADLINE = 5.0
#: A call ending later than its deadline plus this has hung.
GRACE = 1.0
BLACKHOLE = Fault(blackhole=Direction.BOTH)


@pytest.fixture(autouse=True)
def short_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKRPC_BROKER_HEARTBEAT", str(HEARTBEAT))


@pytest.fixture
def proxy(broker_url: str) -> Iterator[FaultProxy]:
    parts = urlsplit(broker_url)
    with FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5672)) as running:
        yield running


@pytest.fixture
def workers(tmp_path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def client_app(url: str, queue: str) -> App:
    """A client app knowing ``echo_pid`` (idempotent) and ``slow_add`` (not) by signature."""
    app = App("faults", broker_url=url, default_queue=queue, default_timeout=20)

    @app.task(name="echo_pid", idempotent=True)
    def echo_pid(value: str, seconds: float = 0.0) -> tuple[int, str]:
        raise NotImplementedError  # runs on the workers

    @app.task(name="slow_add")
    def slow_add(a: int, b: int, seconds: float = 0.01) -> int:
        raise NotImplementedError

    return app


def start_worker(workers, url, queue, tmp_path, check_url) -> Worker:
    env = {"TASKRPC_BROKER_URL": url, "TASKRPC_DEFAULT_QUEUE": queue}
    env["TASKRPC_BROKER_HEARTBEAT"] = str(HEARTBEAT)
    worker = Worker(env, tmp_path / f"worker-{len(workers)}.log", "--pool", "threads")
    workers.append(worker)
    worker.wait_consuming(check_url, queue, count=len(workers))
    return worker


def consumers(url: str, queue: str) -> int:
    state = queue_state(url, queue)
    return 0 if state is None else state[1]


def show(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print("\n" + text)


def tally_calls(calls: list[Call], should_succeed) -> Tally:
    tally = Tally()
    for call in calls:
        if call.ended - call.started > DEADLINE + GRACE:
            tally.add("hung")
        elif call.outcome == "ok":
            tally.add("ok")
        elif call.outcome == "wrong":
            tally.add("wrong")
        elif should_succeed(call) or call.outcome == "untyped":
            tally.add("lost", call.error)
        else:
            tally.add("typed", call.error)
    return tally


@pytest.mark.timeout(180)
def test_a_blackholed_worker_stalls_no_call_and_the_other_worker_takes_over(
    broker_url, unique_queue, proxy, workers, tmp_path, capsys
):
    """One of two workers cut off (both ways) for 60 s under a stream of 5 s calls."""
    healthy = start_worker(workers, broker_url, unique_queue, tmp_path, broker_url)
    cut_off = start_worker(workers, proxy.url(broker_url), unique_queue, tmp_path, broker_url)
    app = client_app(broker_url, unique_queue)
    blackhole_seconds = 60.0
    try:
        with CallStream(app.tasks["echo_pid"], threads=4, deadline=DEADLINE, pause=0.05) as stream:
            time.sleep(3)
            cut = time.monotonic()
            proxy.set(BLACKHOLE)
            dropped = wait_until(lambda: consumers(broker_url, unique_queue) == 1, 30)
            dropped_after = time.monotonic() - cut if dropped else float("inf")
            time.sleep(max(0.0, cut + blackhole_seconds - time.monotonic()))
            proxy.set(Fault())
            healed = time.monotonic()
            rejoined = wait_until(lambda: consumers(broker_url, unique_queue) == 2, 30)
            rejoined_after = time.monotonic() - healed
            time.sleep(3)  # calls reach the returned worker too
    finally:
        app.close()
    settled = cut + 3 * HEARTBEAT
    tally = tally_calls(stream.calls, lambda call: not cut - DEADLINE <= call.started <= settled)
    during = [c for c in stream.calls if settled < c.started and c.ended < healed]
    after = [c for c in stream.calls if c.started > healed + rejoined_after]
    show(
        capsys,
        tally.table(f"one of two workers blackholed for {blackhole_seconds:.0f} s")
        + f"\nbroker dropped the cut-off worker after  {dropped_after:6.1f} s"
        + f"\nworker back after the link healed         {rejoined_after:6.1f} s"
        + f"\ncalls during the cut, > 3 heartbeats in   {len(during):6d}"
        + f"\n  of which served by the healthy worker   "
        f"{sum(c.pid == healthy.process.pid for c in during):6d}"
        + f"\ncalls served by the returned worker       "
        f"{sum(c.pid == cut_off.process.pid for c in after):6d}",
    )
    assert tally["hung"] == 0 and tally["lost"] == 0 and tally["wrong"] == 0, tally.table("")
    assert during and all(c.outcome == "ok" and c.pid == healthy.process.pid for c in during)
    assert dropped_after < 3 * HEARTBEAT + 2  # the broker saw the heartbeats stop
    assert rejoined, f"the cut-off worker did not come back:\n{cut_off.output()[-3000:]}"
    assert any(c.pid == cut_off.process.pid for c in after), "the returned worker got no call"


@pytest.mark.timeout(90)
def test_a_client_whose_link_is_blackholed_fails_or_resends_pending_calls_in_time(
    broker_url, unique_queue, proxy, workers, tmp_path, capsys
):
    start_worker(workers, broker_url, unique_queue, tmp_path, broker_url)
    app = client_app(proxy.url(broker_url), unique_queue)
    deadline = 20.0
    try:
        assert app.send_task("add", [1, 2], timeout=10).get() == 3  # connected
        plain = [app.tasks["slow_add"].apply_async((i, 1, 1.0), timeout=deadline) for i in range(4)]
        resendable = [
            app.tasks["echo_pid"].apply_async((f"r{i}", 1.0), timeout=deadline) for i in range(4)
        ]
        time.sleep(0.3)  # published and running: the replies will be held
        for link in proxy.links:  # only the links open now: the client may reconnect
            link.set(BLACKHOLE)
        cut = time.monotonic()
        later = [app.tasks["slow_add"].apply_async((i, 2), timeout=deadline) for i in range(4)]
        outcomes = []
        for kind, results in (("plain", plain), ("resendable", resendable), ("later", later)):
            for result in results:
                try:
                    result.get()
                    outcomes.append((kind, "ok", time.monotonic() - cut))
                except Exception as exc:
                    outcomes.append((kind, type(exc).__name__, time.monotonic() - cut))
    finally:
        app.close()
    tally = Tally()
    for kind, outcome, _ in outcomes:
        tally.add("ok" if outcome == "ok" else "typed", None)
        if outcome != "ok":
            tally.errors[f"{kind}: {outcome}"] += 1
    latest = max(took for _, _, took in outcomes)
    lost_after = max((took for _, outcome, took in outcomes if outcome != "ok"), default=0.0)
    show(
        capsys,
        tally.table("the client's own link blackholed")
        + f"\nConnectionLost raised after the cut   {lost_after:5.1f} s (heartbeat 2 s)"
        + f"\nlast call (resent or later) ended     {latest:5.1f} s after the cut",
    )
    assert all(outcome == "ConnectionLost" for kind, outcome, _ in outcomes if kind == "plain")
    assert all(outcome == "ok" for kind, outcome, _ in outcomes if kind == "resendable")
    assert all(outcome in {"ok", "ConnectionLost"} for kind, outcome, _ in outcomes)
    assert latest < 3 * HEARTBEAT + 3 < deadline  # about two heartbeats, not the deadline


def checked_call(task, args: tuple, expected, tally: Tally, timeout: float = 15.0) -> None:
    """Call ``task(*args)``; tally a right or wrong answer, a typed error, or a hang."""
    started = time.monotonic()
    try:
        got = task.apply_async(args, timeout=timeout).get()
        if task.name == "echo_pid":
            got = got[1]
        outcome, error = ("ok" if got == expected else "wrong"), None
    except TaskRPCError as exc:  # typed: allowed
        outcome, error = "typed", exc
    except Exception as exc:  # anything else is a bug
        outcome, error = "lost", exc
    if time.monotonic() - started > timeout + GRACE:
        outcome = "hung"
    tally.add(outcome, error)


def recovered(echo, within: float = 30.0) -> bool:
    """Whether a call succeeds again within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            return bool(echo.apply_async(("probe",), timeout=5).get()[1] == "probe")
        except TaskRPCError:
            time.sleep(0.2)
    return False


@pytest.mark.timeout(120)
def test_frames_sliced_byte_by_byte_or_cut_mid_frame_never_decode_wrong(
    broker_url, unique_queue, workers, tmp_path, capsys
):
    parts = urlsplit(broker_url)
    target = (parts.hostname or "127.0.0.1", parts.port or 5672)
    with FaultProxy(target) as worker_side, FaultProxy(target) as client_side:
        start_worker(workers, worker_side.url(broker_url), unique_queue, tmp_path, broker_url)
        app = client_app(client_side.url(broker_url), unique_queue)
        echo = app.tasks["echo_pid"]
        tally = Tally()

        try:
            values = ["", "a", "é" * 300, "x" * 5000, "\u2603 snow " * 100, '{}[]"\\']
            for side in (client_side, worker_side):
                side.set(Fault(write_size=1))
            for value in values * 2:
                checked_call(echo, (value,), value, tally)
            for side in (client_side, worker_side):
                side.set(Fault())
            sliced_ok = tally["ok"]
            cuts = 0
            for side in (client_side, worker_side):
                for offset in (3, 9, 27, 81, 243):
                    assert recovered(echo), "no recovery after a cut"
                    links = side.links
                    for link in links:  # the open links only: reconnections pass
                        link.set(Fault(cut_after=offset))
                    for i in range(2):  # idempotent calls may be resent, plain ones not
                        value = f"cut-{offset}-{i}-" + "y" * 200
                        checked_call(echo, (value,), value, tally)
                        checked_call(app.tasks["slow_add"], (i, offset), i + offset, tally)
                    cuts += sum(link.closed for link in links)
            assert recovered(echo), "no recovery after the last cut"
        finally:
            app.close()
    show(
        capsys,
        tally.table("frames sliced into 1-byte writes, then cut mid-frame")
        + f"\nsliced calls ok           {sliced_ok:6d} of {len(values) * 2}"
        + f"\nlinks cut mid-stream      {cuts:6d} (client and worker side)",
    )
    assert sliced_ok == len(values) * 2 and cuts >= 10
    assert tally["wrong"] == 0 and tally["hung"] == 0 and tally["lost"] == 0, tally.table("")


@pytest.mark.timeout(90)
def test_the_testing_guides_partition_example_holds(broker_url, unique_queue, start_worker):
    """docs/guide/testing.rst, "Breaking the network", as written there."""
    parts = urlsplit(broker_url)
    with FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5672)) as proxy:
        app = App("shop", broker_url=proxy.url(broker_url), default_queue=unique_queue)

        @app.task
        def slow_add(x: int, y: int) -> int:
            time.sleep(1)
            return x + y

        try:
            start_worker(app)  # the worker connects through the proxy too
            assert slow_add.delay(2, 3).get(timeout=10) == 5
            call = slow_add.apply_async((2, 3), timeout=30)
            time.sleep(0.3)  # running on the worker
            for link in proxy.links:  # the connections open now: reconnections get through
                link.set(Fault(blackhole=Direction.BOTH))
            cut = time.monotonic()
            with pytest.raises(ConnectionLost):
                call.get()
            assert time.monotonic() - cut < 3 * HEARTBEAT + 3  # about two heartbeats
            assert slow_add.apply_async((2, 3), timeout=30).get() == 5
        finally:
            app.close()
