"""Fan-out: many calls at once, with a bound on those in flight and one overall timeout.

:func:`gather` and :func:`as_completed` wait on handles you already have;
:meth:`Task.map <taskrpc.Task.map>` and :meth:`Task.starmap <taskrpc.Task.starmap>` send
one call per item and keep at most ``max_in_flight`` of them outstanding. Each has an
asyncio twin, named with ``_async`` like every coroutine of the API.
"""

from .aio import as_completed_async, gather_async, map_async
from .sync import as_completed, gather, map_sync

__all__ = [
    "as_completed",
    "as_completed_async",
    "gather",
    "gather_async",
    "map_async",
    "map_sync",
]
