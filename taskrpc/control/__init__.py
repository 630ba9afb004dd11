"""The control plane: ask every live worker (``taskrpc inspect``) and revoke requests.

Workers started with ``control=True`` (``taskrpc worker`` does, unless ``--no-control``)
run a :class:`~taskrpc.control.server.ControlServer`; :func:`broadcast` asks them.
"""

from __future__ import annotations

from .client import broadcast
from .messages import COMMANDS, EXCHANGE

__all__ = ["COMMANDS", "EXCHANGE", "broadcast"]
