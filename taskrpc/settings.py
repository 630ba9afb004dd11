"""Typed settings, from keyword arguments and ``TASKRPC_*`` environment variables.

Precedence: an explicit argument wins over the environment, which wins over the default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from kombu.utils.url import maybe_sanitize_url

from .exceptions import ConfigurationError

#: Broker used when neither an argument nor ``TASKRPC_BROKER_URL`` names one.
DEFAULT_BROKER_URL = "amqp://guest:guest@localhost:5672//"

#: Prefix of the environment variables read by :meth:`Settings.from_env`.
ENV_PREFIX = "TASKRPC_"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything an :class:`~taskrpc.App` needs to talk to the broker.

    Each field can be set from the environment as ``TASKRPC_<FIELD NAME IN CAPITALS>``,
    for example ``TASKRPC_BROKER_URL`` or ``TASKRPC_DEFAULT_TIMEOUT=5``.
    """

    #: AMQP URL of the broker; ``memory://`` runs everything in one process.
    broker_url: str = DEFAULT_BROKER_URL
    #: Direct exchange all requests are published to.
    exchange: str = "taskrpc"
    #: Queue (and routing key) of tasks that do not name their own.
    default_queue: str = "taskrpc.default"
    #: Seconds a call waits for its reply when the caller gives no timeout.
    default_timeout: float = 300.0
    #: Serializer name used to encode requests.
    serializer: str = "json"
    #: Unacknowledged requests a worker holds per unit of concurrency.
    prefetch_multiplier: int = 4
    #: Replies remembered per client to recognise duplicates.
    duplicate_window: int = 10_000
    #: Seconds to wait for a broker connection before giving up.
    connect_timeout: float = 5.0
    #: Largest message body, in bytes, a client sends or a worker accepts.
    max_message_size: int = 4 * 1024 * 1024
    #: Mark requests persistent (delivery mode 2). Off: RPC requests outlive no broker restart.
    persistent_requests: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``TASKRPC_*`` variables, then apply non-``None`` overrides.

        Raises:
            ConfigurationError: A variable does not parse as its field's type.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _parse(field, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from exc

    @property
    def safe_broker_url(self) -> str:
        """The broker URL with any password masked, fit for logs and errors."""
        return safe_url(self.broker_url)


def safe_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``**``."""
    return str(maybe_sanitize_url(url))


def _parse(field: dataclasses.Field[Any], raw: str) -> Any:
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    try:
        if kind == "bool":
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        name = ENV_PREFIX + field.name.upper()
        raise ConfigurationError(f"{name}={raw!r} is not a valid {kind}") from exc
    return raw
