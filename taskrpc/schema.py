"""JSON Schema of each task's arguments and result, for clients in other languages.

``taskrpc schema APP`` prints what :func:`app_schema` returns, so that a client written
from the protocol page alone can validate a call before sending it, and its result after.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .messages import PROTOCOL_VERSION

if TYPE_CHECKING:
    from .app import App
    from .task import Task


def task_schema(task: Task[Any, Any]) -> dict[str, Any]:
    """Describe one task: its queue, its arguments and result as JSON Schema, its options.

    ``arguments`` is the schema of the arguments by name (``kwargs``); ``positional``
    names, in order, the parameters ``args`` may give instead. ``result`` is the schema of
    the result as the worker sends it. ``options`` are the task's own settings, ``None``
    where the app's apply; ``throws`` names the exception types that are part of its
    contract.

    Example:
        >>> from taskrpc.fibonacci import fib
        >>> schema = task_schema(fib)
        >>> schema["arguments"]["properties"]["n"]
        {'maximum': 100000, 'minimum': 0, 'title': 'N', 'type': 'integer'}
        >>> schema["result"]
        {'type': 'integer'}
    """
    signature = task.signature
    return {
        "name": task.name,
        "queue": task.queue,
        "arguments": signature.arguments_model.model_json_schema(mode="validation"),
        "positional": signature.positional,
        "result": signature.result_adapter.json_schema(mode="serialization"),
        "options": {
            "serializer": task.serializer,
            "reply_serializer": task.reply_serializer,
            "idempotent": task.idempotent,
            "bare": task.bare,
            "timeouts": _policy(task.timeouts),
            "retry": _policy(task.retry),
            "priority": task.priority,
            "rate_limit": task.rate_limit,
            "ignore_result": task.ignore_result,
            "throws": [_type_name(kind) for kind in task.throws],
        },
    }


def app_schema(app: App, task: str | None = None) -> dict[str, Any]:
    """Describe every task of ``app`` (or only ``task``), sorted by name.

    Raises:
        KeyError: ``app`` has no task named ``task``.
    """
    names = [task] if task is not None else sorted(app.tasks)
    return {
        "protocol": PROTOCOL_VERSION,
        "app": app.name,
        "tasks": {name: task_schema(app.tasks[name]) for name in names},
    }


def _policy(policy: object) -> dict[str, Any] | None:
    if policy is None or not dataclasses.is_dataclass(policy):
        return None
    fields = dataclasses.asdict(policy)  # type: ignore[arg-type]
    return {
        key: [_type_name(item) for item in value] if isinstance(value, tuple) else value
        for key, value in fields.items()
    }


def _type_name(value: Any) -> Any:
    if isinstance(value, type):
        module = value.__module__
        return value.__qualname__ if module == "builtins" else f"{module}.{value.__qualname__}"
    return value
