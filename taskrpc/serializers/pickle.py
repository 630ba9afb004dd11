"""pickle: registered so that its content type is recognised, never used unless enabled.

Unpickling runs code chosen by whoever wrote the message. A registry refuses to decode or
encode with this serializer until the app calls ``app.serializers.enable("pickle")``.
"""

from __future__ import annotations

import pickle
from typing import Any


class PickleSerializer:
    """Python's pickle. **Unsafe**: anyone who can publish to your queues can run code."""

    name = "pickle"
    content_type = "application/x-python-serialize"
    #: Refused by every registry unless explicitly enabled.
    unsafe = True

    def dumps(self, data: Any) -> bytes:
        """Pickle ``data``."""
        return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, body: bytes) -> Any:
        """Unpickle ``body``: only ever reached once the app enabled pickle."""
        try:
            return pickle.loads(body)  # noqa: S301 - opt-in, see the module docstring
        except Exception as exc:
            raise ValueError(f"cannot unpickle: {exc}") from exc
