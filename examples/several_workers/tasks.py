"""A task that says which worker process served it, for running several workers at once.

Serve it from this directory, as many times as you like::

    taskrpc worker tasks:app --concurrency 2

The app reads ``TASKRPC_BROKER_URL`` and ``TASKRPC_DEFAULT_QUEUE`` from the environment.
"""

from __future__ import annotations

import os
import time

from pydantic import BaseModel

from taskrpc import App, current_request

app = App("jobs")


class Served(BaseModel):
    """Who ran a job: the worker's process id, and whether the broker delivered it before."""

    job: int
    pid: int
    redelivered: bool


@app.task(name="jobs.work")
def work(job: int, seconds: float = 0.05) -> Served:
    """Take ``seconds``, then report which process did the job."""
    time.sleep(seconds)
    request = current_request()
    return Served(job=job, pid=os.getpid(), redelivered=bool(request and request.redelivered))
