"""A taskrpc serializer plug-in: canonical JSON (sorted keys, no spaces, ASCII only).

Equal data always gives equal bytes, which helps caching, deduplication and audit logs.
Once installed it is registered under the ``taskrpc.serializers`` entry-point group as
``cjson``; taskrpc loads it the first time an app names it, e.g. with
``TASKRPC_SERIALIZER=cjson``, ``@app.task(serializer="cjson")`` or
``task.apply_async(args, serializer="cjson")``.
"""

from __future__ import annotations

import json
from typing import Any


class CanonicalJSONSerializer:
    """What taskrpc needs from a serializer: a name, a content type, dumps and loads."""

    name = "cjson"
    content_type = "application/x-canonical-json"

    def dumps(self, data: Any) -> bytes:
        """Encode JSON-compatible data; raise ``ValueError`` for anything else."""
        try:
            text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not encodable as canonical JSON: {exc}") from exc
        return text.encode("ascii")

    def loads(self, body: bytes) -> Any:
        """Decode; every malformed body (bad bytes, NaN, too deep) is a ``ValueError``."""
        try:
            return json.loads(body.decode("ascii"), parse_constant=_refuse)
        except RecursionError:
            raise ValueError("nested too deeply") from None


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not canonical JSON")
