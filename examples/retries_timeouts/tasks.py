"""Tasks that fail, run long or get stuck: retries, soft and hard time limits, deadlines.

Serve them from this directory with the processes pool, which enforces hard limits::

    taskrpc worker tasks:app --pool processes --concurrency 2

The app reads ``TASKRPC_BROKER_URL`` and ``TASKRPC_DEFAULT_QUEUE`` from the environment.
"""

from __future__ import annotations

import time

from taskrpc import App, RetryPolicy, SoftTimeLimitExceeded, TimeoutPolicy, current_request

app = App("retries")

#: Retry on ConnectionError only: 3 retries, 0.2 s, 0.4 s, then 0.8 s apart (no jitter, so
#: the example prints the same thing every time).
FLAKY_NETWORK = RetryPolicy(retry_on=(ConnectionError,), max_retries=3, backoff=0.2, jitter=0)


@app.task(name="rates.fetch", retry=FLAKY_NETWORK)
def fetch_rate(currency: str, failures: int) -> str:
    """Fail with ``ConnectionError`` on the first ``failures`` tries, then answer.

    The worker retries it on the same request: ``current_request().retries`` counts the
    retries so far and ``last_error`` says what the previous try raised.
    """
    request = current_request()
    assert request is not None  # always set while a worker runs the task
    if request.retries < failures:
        raise ConnectionError(f"rates service unreachable (try {request.retries + 1})")
    return f"{currency}: 1.0842 after {request.retries} retries"


@app.task(name="rates.parse", retry=FLAKY_NETWORK)
def parse_rate(text: str) -> float:
    """Raise ``ValueError`` for bad input: not in ``retry_on``, so never retried."""
    return float(text)


@app.task(name="report.build", timeouts=TimeoutPolicy(soft_limit=0.75, hard_limit=2))
def build_report(pages: int) -> str:
    """Write ``pages`` pages at 0.3 s each; past the soft limit, stop and say how far it got.

    ``SoftTimeLimitExceeded`` is raised inside the task (processes and solo pools only),
    which may catch it to clean up and return what it has.
    """
    done = 0
    try:
        for _ in range(pages):
            time.sleep(0.3)
            done += 1
    except SoftTimeLimitExceeded:
        return f"partial report: {done} of {pages} pages"
    return f"full report: {pages} pages"


@app.task(name="report.stuck", timeouts=TimeoutPolicy(soft_limit=0.5, hard_limit=1.5))
def stuck() -> str:
    """Ignore the soft limit and hang: the processes pool kills it at the hard limit."""
    while True:
        try:
            time.sleep(60)
        except SoftTimeLimitExceeded:
            pass  # a badly behaved task: carries on regardless


@app.task(name="report.slow")
def slow(seconds: float) -> str:
    """Sleep, then answer; for calls whose deadline is shorter than the work."""
    time.sleep(seconds)
    return f"slept {seconds:g} s"
