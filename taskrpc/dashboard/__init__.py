"""``taskrpc dashboard``: a live web page of the whole deployment (``taskrpc[dashboard]``).

A Starlette app, served by uvicorn: ``/`` is a single static page (no build step), which
follows ``/events``, a server-sent-events stream of snapshots gathered by a
:class:`~taskrpc.dashboard.collector.Collector` from the control plane;
``/api/snapshot`` returns the latest snapshot as JSON. Task arguments are never shown:
workers do not keep them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from .collector import Collector

if TYPE_CHECKING:
    from ..app import App

__all__ = ["Collector", "create_app", "serve"]

#: The page, served as is.
PAGE = Path(__file__).with_name("static") / "index.html"


def create_app(collector: Collector) -> Any:
    """The Starlette application serving ``collector``'s snapshots.

    Raises:
        ConfigurationError: Starlette is not installed.
    """
    try:
        from starlette.applications import Starlette
        from starlette.responses import FileResponse, JSONResponse, StreamingResponse
        from starlette.routing import Route
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "the dashboard needs starlette and uvicorn: pip install 'taskrpc[dashboard]'"
        ) from None

    async def page(request: Any) -> Any:
        return FileResponse(PAGE, media_type="text/html", headers=_NO_CACHE)

    async def snapshot(request: Any) -> Any:
        return JSONResponse(collector.snapshot, headers=_NO_CACHE)

    async def events(request: Any) -> Any:
        return StreamingResponse(
            _stream(collector, request),
            media_type="text/event-stream",
            headers={**_NO_CACHE, "X-Accel-Buffering": "no"},
        )

    routes = [Route("/", page), Route("/api/snapshot", snapshot), Route("/events", events)]
    return Starlette(routes=routes)


_NO_CACHE = {"Cache-Control": "no-store"}


async def _stream(collector: Collector, request: Any) -> AsyncIterator[str]:
    """Each new snapshot as one SSE event; a comment now and then keeps proxies open."""
    sent = -1
    idle = 0.0
    while not await request.is_disconnected():
        current = collector.snapshot
        if current["version"] != sent:
            sent, idle = current["version"], 0.0
            yield f"data: {json.dumps(current, default=str)}\n\n"
        elif idle >= 15:
            idle = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(0.2)
        idle += 0.2


def serve(
    app: App,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    interval: float = 2.0,
    only_app: bool = True,
) -> None:
    """Collect and serve until interrupted (what ``taskrpc dashboard`` runs)."""
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "the dashboard needs starlette and uvicorn: pip install 'taskrpc[dashboard]'"
        ) from None
    collector = Collector(app, interval=interval, only_app=only_app)
    collector.start()
    try:
        uvicorn.run(create_app(collector), host=host, port=port, log_level="warning")
    finally:
        collector.stop()
