"""TimeoutPolicy: how long a call may take, and how long a task may run."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, kw_only=True)
class TimeoutPolicy:
    """Time limits, in seconds; ``None`` means no limit.

    Parameters:
        call: The caller's whole budget: the request's deadline is ``now + call``. The
            broker drops the request if no worker takes it in time, the worker refuses
            to start it late, and ``get()`` stops waiting then.
        soft_limit: Run time after which the task gets
            :class:`~taskrpc.SoftTimeLimitExceeded` raised inside it (processes and solo
            pools, main thread of the task only; threads cannot be interrupted).
        hard_limit: Run time after which the processes pool kills the task's process and
            answers :class:`~taskrpc.TimeLimitExceeded`. Threads cannot be killed: under
            the threads and solo pools a hard limit is not enforced (the worker warns
            at start).

    Example:
        >>> TimeoutPolicy(call=10, soft_limit=5, hard_limit=8).call
        10
    """

    call: float | None = None
    soft_limit: float | None = None
    hard_limit: float | None = None

    def __post_init__(self) -> None:
        for name in ("call", "soft_limit", "hard_limit"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, got {value!r}")
        if self.soft_limit and self.hard_limit and self.soft_limit >= self.hard_limit:
            raise ValueError("soft_limit must be shorter than hard_limit")
