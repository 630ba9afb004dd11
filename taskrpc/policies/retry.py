"""RetryPolicy: how many times to try again, how long to wait between tries, and for what."""

from __future__ import annotations

import dataclasses
import random

#: Our own generator: drawing from ``random``'s would move the state an application seeds.
_JITTER = random.Random()


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter and a cap.

    The delay before retry ``n`` (1-based) is ``min(max_delay, backoff * multiplier**(n-1))``,
    then spread by ``± jitter`` (a fraction) so that many clients do not retry in step.

    Parameters:
        max_retries: Retries after the first try; 0 disables retrying.
        backoff: Delay before the first retry, seconds.
        multiplier: Growth of the delay per retry.
        max_delay: Cap on one delay, seconds.
        jitter: Fraction of the delay to randomise, 0 to 1.
        retry_on: Exception types worth retrying (for task retries; empty: none).

    Example:
        >>> policy = RetryPolicy(max_retries=3, backoff=0.1, jitter=0)
        >>> [policy.delay(n) for n in (1, 2, 3)]
        [0.1, 0.2, 0.4]
    """

    max_retries: int = 3
    backoff: float = 0.1
    multiplier: float = 2.0
    max_delay: float = 5.0
    jitter: float = 0.2
    retry_on: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff < 0 or self.max_delay < 0:
            raise ValueError("max_retries, backoff and max_delay must not be negative")
        if not 0 <= self.jitter <= 1 or self.multiplier < 1:
            raise ValueError("jitter must be within [0, 1] and multiplier at least 1")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        base = min(self.max_delay, self.backoff * self.multiplier ** max(0, retry - 1))
        if self.jitter:
            base *= 1 + _JITTER.uniform(-self.jitter, self.jitter)
        return max(0.0, base)

    def should_retry(self, retry: int, error: BaseException) -> bool:
        """Whether retry number ``retry`` is allowed after ``error`` (matched by ``retry_on``)."""
        return retry <= self.max_retries and isinstance(error, self.retry_on)


#: No retries at all.
NO_RETRY = RetryPolicy(max_retries=0)
#: Broker connections: a few quick tries, then slower ones, about 10 s in all.
DEFAULT_CONNECT_RETRY = RetryPolicy(max_retries=6, backoff=0.2, max_delay=4.0)
#: A publish that failed on a broken connection: retried at once on a new one.
DEFAULT_PUBLISH_RETRY = RetryPolicy(max_retries=2, backoff=0.05, max_delay=1.0)
#: Client resends (only when safe): two more tries.
DEFAULT_RESEND = RetryPolicy(max_retries=2, backoff=0.1, max_delay=2.0)
