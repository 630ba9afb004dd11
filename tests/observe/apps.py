"""Apps of the observability tests."""

from __future__ import annotations

import uuid

from taskrpc import App

#: An app no worker serves: its name is new in every process.
lonely = App(f"observe-lonely-{uuid.uuid4().hex[:8]}")
