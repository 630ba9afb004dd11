"""Retry and timeout policies: frozen, typed, keyword-only objects; seconds as floats.

Set on the app, the task or the call; the most specific one wins, whole.
"""

from .retry import RetryPolicy
from .timeout import TimeoutPolicy

__all__ = ["RetryPolicy", "TimeoutPolicy"]
