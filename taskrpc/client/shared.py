"""An app's shared clients: one sync and one asyncio client, made on first use.

:attr:`taskrpc.App.client` and :attr:`taskrpc.App.async_client` hand out these. Making
one is thread-safe; a client that closes is forgotten, so the next access makes a fresh
one; a forked pool child drops its parent's without closing them (their sockets belong
to the parent).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..app import App
    from .aio import AsyncClient
    from .sync import Client


class SharedClients:
    """The sync and asyncio clients of one app; see the module docstring."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._sync: Client | None = None
        self._async: AsyncClient | None = None
        self._lock = threading.Lock()

    @property
    def made(self) -> bool:
        """Whether either client exists (and so may be connected)."""
        return self._sync is not None or self._async is not None

    def sync(self) -> Client:
        """The shared thread-safe client, made on first use."""
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    from .sync import Client

                    self._sync = Client(self._app)
        return self._sync

    def asyncio(self) -> AsyncClient:
        """The shared asyncio client, made on first use."""
        if self._async is None:
            with self._lock:
                if self._async is None:
                    from .aio import AsyncClient

                    self._async = AsyncClient(self._app)
        return self._async

    def forget(self, client: object) -> None:
        """``client`` closed: the next access makes a new one."""
        with self._lock:
            if self._sync is client:
                self._sync = None
            if self._async is client:
                self._async = None

    def drop(self) -> None:
        """Forget both without closing them (in a forked child: the sockets are the
        parent's)."""
        self._sync = self._async = None

    def close(self) -> None:
        """Close both; their pending calls fail with :class:`~taskrpc.ClientClosed`."""
        with self._lock:
            clients = (self._sync, self._async)
            self._sync = self._async = None
        for client in clients:
            if client is not None:
                client.close()
