"""Rates (``"100/s"``) and the token bucket that enforces them."""

from __future__ import annotations

import re
import time

from .exceptions import ConfigurationError

#: Seconds per unit of a rate: ``"100/s"``, ``"10/m"``, ``"5/h"``.
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*$")


def parse_rate(rate: str) -> float:
    """Tokens per second of a rate such as ``"100/s"``, ``"10/m"`` or ``"5/h"``.

    Raises:
        ConfigurationError: The rate does not parse, or is not positive.

    Example:
        >>> parse_rate("30/m")
        0.5
    """
    match = _RATE.match(rate)
    if match is None or float(match.group(1)) <= 0:
        raise ConfigurationError(f"rate limit {rate!r}: expected a positive 'N/s', 'N/m' or 'N/h'")
    return float(match.group(1)) / UNITS[match.group(2)]


class TokenBucket:
    """``rate`` tokens a second, at most ``capacity`` saved up (1: no bursts)."""

    def __init__(self, rate: float, capacity: float = 1.0) -> None:
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._at = time.monotonic()

    def wait_time(self) -> float:
        """Seconds until a token is there (0: now)."""
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self) -> bool:
        """Take a token if one is there."""
        if self.wait_time() > 0:
            return False
        self._tokens -= 1
        return True
