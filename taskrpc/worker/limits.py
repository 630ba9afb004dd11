"""Task run-time limits: which apply, and the soft limit as a SIGALRM inside the task."""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING

from ..exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from ..messages import Outcome
from .executor import Job, error_outcome, execute

if TYPE_CHECKING:
    from ..app import App


def time_limits(app: App, task_name: str) -> tuple[float | None, float | None]:
    """``(soft, hard)`` run-time limits of a task: its own policy, else the app's."""
    task = app.tasks.get(task_name)
    policy = (task.timeouts if task is not None else None) or app.timeouts
    return policy.soft_limit, policy.hard_limit


def run_with_soft_limit(app: App, job: Job) -> Outcome:
    """Execute ``job`` with its soft limit armed (main thread of a process only)."""
    soft_limit, _ = time_limits(app, job.task)
    if not soft_limit:
        return execute(app, job)  # no timer to arm or disarm: saves two system calls
    try:
        signal.setitimer(signal.ITIMER_REAL, soft_limit)
        return execute(app, job)
    except SoftTimeLimitExceeded as exc:  # fired outside the task itself
        return error_outcome(app, TimeLimitExceeded(str(exc), type_name="SoftTimeLimitExceeded"))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def on_soft_limit(signum: int, frame: FrameType | None) -> None:
    """SIGALRM handler: interrupt the running task."""
    raise SoftTimeLimitExceeded("the task ran past its soft time limit")
