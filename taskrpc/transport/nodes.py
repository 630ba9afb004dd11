"""Several broker nodes behind one setting: which to try, in what order, and failover.

``Settings.broker_url`` may hold several URLs (kombu's ``;``-separated form, or a list
given to :class:`~taskrpc.App`). A :class:`BrokerNodes` belongs to one connection owner
(a client or a worker): :meth:`BrokerNodes.connect` tries the nodes one after another,
starting with the first listed (or a random one with ``broker_failover_strategy =
"shuffle"``) and, after a node was lost, with the node that follows it. One pass over all
nodes is one attempt of the owner's connect retry policy. Every URL shown in a log line
or an error has its password masked.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TypeVar

from ..exceptions import AuthenticationFailed, BrokerError, ConfigurationError
from ..urls import mask_url, scrub, split_urls

#: Our own generator: drawing from ``random``'s would move the state an application seeds.
_SHUFFLE = random.Random()

logger = logging.getLogger("taskrpc.transport")

#: Values of ``Settings.broker_failover_strategy``.
STRATEGIES = ("round-robin", "shuffle")

C = TypeVar("C")


class BrokerNodes:
    """The broker URLs one connection owner uses, and where it will try next.

    Parameters:
        broker_url: One URL, or several separated by ``;``.
        strategy: ``"round-robin"``: in the order listed; ``"shuffle"``: the same
            rotation from a random starting node, so that many clients spread out.

    Raises:
        ConfigurationError: No URL, or an unknown strategy.
    """

    def __init__(self, broker_url: str, strategy: str = "round-robin") -> None:
        if strategy not in STRATEGIES:
            raise ConfigurationError(
                f"unknown broker_failover_strategy {strategy!r} (choose from "
                f"{', '.join(STRATEGIES)})"
            )
        self.urls = split_urls(broker_url)
        if not self.urls:
            raise ConfigurationError("broker_url names no broker")
        self._next = _SHUFFLE.randrange(len(self.urls)) if strategy == "shuffle" else 0
        #: Index of the node of the current (or last) connection, if any.
        self.current: int | None = None

    def __repr__(self) -> str:
        shown = ";".join(mask_url(url) for url in self.urls)
        return f"<BrokerNodes {shown!r} current={self.current}>"

    def __len__(self) -> int:
        return len(self.urls)

    @property
    def current_url(self) -> str | None:
        """The masked URL of the node connected to last, for logs and reprs."""
        return None if self.current is None else mask_url(self.urls[self.current])

    def order(self) -> list[int]:
        """Indices of the nodes to try now, best first."""
        n = len(self.urls)
        return [(self._next + i) % n for i in range(n)]

    def lost(self) -> None:
        """The current node's connection was lost: the next attempt starts after it."""
        if self.current is not None and len(self.urls) > 1:
            self._next = (self.current + 1) % len(self.urls)
            logger.warning(
                "lost broker node %s; the next connection tries %s first",
                mask_url(self.urls[self.current]),
                mask_url(self.urls[self._next]),
            )

    def connect(self, connect_one: Callable[[str], C]) -> C:
        """Call ``connect_one(url)`` on each node in turn; return the first success.

        ``connect_one`` raises :class:`~taskrpc.BrokerError` (or any exception) when
        its node does not answer; the message may hold the URL, which is masked here.

        Raises:
            BrokerError: No node answered; the message names each node (masked) and why.
        """
        failures = []
        refused = 0  # nodes that refused the credentials
        for index in self.order():
            url = self.urls[index]
            try:
                connection = connect_one(url)
            except Exception as exc:  # any failure of one node: try the next
                refused += _refused_login(exc)
                reason = scrub(f"{type(exc).__name__}: {exc}", self.urls)
                failures.append((mask_url(url), reason))
                if len(self.urls) > 1:
                    logger.warning("broker node %s did not answer: %s", mask_url(url), reason)
                continue
            if self.current != index and len(self.urls) > 1:
                logger.info(
                    "connected to broker node %s (%d of %d)",
                    mask_url(url),
                    index + 1,
                    len(self.urls),
                )
            self.current, self._next = index, index
            return connection
        kind = AuthenticationFailed if refused == len(failures) else BrokerError
        if len(failures) == 1:
            raise kind("cannot connect to {}: {}".format(*failures[0]))
        raise kind(
            f"cannot connect to any of {len(failures)} broker nodes: "
            + "; ".join(f"{url} ({reason})" for url, reason in failures)
        )


def _refused_login(exc: BaseException) -> bool:
    """Whether a connection failed because the broker refused the credentials."""
    return "ACCESS_REFUSED" in str(exc) or type(exc).__name__ == "AccessRefused"
