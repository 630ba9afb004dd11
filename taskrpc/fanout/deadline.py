"""The one overall deadline a fan-out shares between its calls."""

from __future__ import annotations

import time

from ..exceptions import ConfigurationError, TimeoutError


class Deadline:
    """``timeout`` seconds from now, or none at all (``None``)."""

    def __init__(self, timeout: float | None) -> None:
        if timeout is not None and not timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout!r}")
        self.timeout = timeout
        self._at = None if timeout is None else time.monotonic() + timeout

    def left(self) -> float | None:
        """Seconds left (never below zero), or ``None`` without a deadline."""
        return None if self._at is None else max(0.0, self._at - time.monotonic())

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self._at is not None and time.monotonic() >= self._at

    def error(self, pending: int) -> TimeoutError:
        """The error for calls still pending when the deadline passed."""
        return TimeoutError(f"{pending} call(s) still pending after the overall {self.timeout:g} s")
