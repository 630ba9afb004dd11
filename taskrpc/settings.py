"""Typed settings, from keyword arguments and ``TASKRPC_*`` environment variables.

Precedence: an explicit argument wins over the environment, which wins over the default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from .exceptions import ConfigurationError
from .urls import join_urls, mask_urls

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

    #: AMQP URL of the broker; ``memory://`` runs everything in one process. Several
    #: nodes of a cluster: URLs separated by ``;`` (or a list, joined with ``;``).
    broker_url: str = DEFAULT_BROKER_URL
    #: Order in which the nodes of ``broker_url`` are tried: ``"round-robin"`` (as
    #: listed, then the node after a lost one) or ``"shuffle"`` (from a random node).
    broker_failover_strategy: str = "round-robin"
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
    #: AMQP heartbeat interval in seconds (0 turns heartbeats off). Both ends send one
    #: when idle and declare the link dead after two silent intervals, so a blackholed
    #: connection is noticed in about 20 s at the default and its unacked requests go to
    #: other workers. Lower notices sooner but risks false alarms on a loaded machine.
    broker_heartbeat: float = 10.0
    #: For TLS (``amqps://`` URLs only), the CA certificates (a PEM file) that sign the broker's
    #: certificate; empty: the CAs this system trusts.
    broker_tls_ca: str = ""
    #: For TLS, a client certificate (PEM file) for a broker that asks for one.
    broker_tls_cert: str = ""
    #: For TLS, the client certificate's private key (unencrypted PEM), unless it is in
    #: ``broker_tls_cert``.
    broker_tls_key: str = ""
    #: For TLS, check that the broker's certificate names the URL's host. The certificate
    #: itself is always verified.
    broker_tls_verify_hostname: bool = True
    #: Largest message body, in bytes, a client sends or a worker accepts (also the most a
    #: compressed body may inflate to).
    max_message_size: int = 4 * 1024 * 1024
    #: Decode budgets, checked before the expensive work (see the security guide); the
    #: most digits of integers longer than 4300 digits in one received body, in total
    #: (converting one costs the square of its digits; fib(100000) has 20,899), ...
    max_int_digits: int = 50_000
    #: ... the deepest nesting of arrays and objects in a body (JSON's parser stops at
    #: 200 levels whatever this says), ...
    max_nesting_depth: int = 200
    #: ... the most arrays, objects and items in a request, counted before it is parsed
    #: (each costs the worker time to build: a refused request of this many costs at
    #: most a few milliseconds; a task whose parameters are all scalars has a much
    #: lower bound of its own), ...
    max_elements: int = 20_000
    #: ... how many AMQP headers a request may carry, and their total size in bytes.
    max_headers: int = 128
    max_header_bytes: int = 32 * 1024
    #: Send task tracebacks in error replies. Off by default, since a traceback shows file
    #: paths, library versions and code to whoever can read the reply queue.
    send_tracebacks: bool = False
    #: Validate task arguments strictly, so no ``true`` for an ``int``, no ``"1"`` for an
    #: ``int`` or ``1`` for a ``str`` (top-level parameters of scalar types).
    strict_arguments: bool = False
    #: Serializers (names, comma-separated in the environment) a worker decodes requests
    #: in. The app's own serializer and those its tasks name are always added.
    accept_requests: tuple[str, ...] = ("json",)
    #: Serializers a client decodes replies in; the same ones are always added, and so is
    #: any serializer chosen for a single call.
    accept_replies: tuple[str, ...] = ("json",)
    #: Compress bodies with ``"zlib"`` or ``"gzip"``; ``""`` (the default) for none.
    compression: str = ""
    #: Bodies smaller than this many bytes are never compressed.
    compression_threshold: int = 16 * 1024
    #: Shared HMAC keys, ``"key-id:secret"`` (comma-separated in the environment). The
    #: first signs; all verify. Empty: no signing. Never shown in reprs.
    signing_keys: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    #: Seconds either side of now a signed message stays valid; outside, it is a replay.
    signature_window: float = 300.0
    #: RabbitMQ's ``consumer_timeout`` (seconds): the broker closes a channel holding an
    #: unacked request longer. Hard time limits must stay below it.
    broker_consumer_timeout: float = 1800.0
    #: Use RabbitMQ's direct reply-to (``amq.rabbitmq.reply-to``) instead of a callback
    #: queue per client. RabbitMQ only; see the performance guide for when it pays.
    direct_reply_to: bool = False
    #: The type of task queues, ``"classic"`` (declared with no type argument, as ever)
    #: or ``"quorum"`` (replicated; see the deploying guide). Client and worker must agree.
    queue_type: str = "classic"
    #: Per-queue exceptions to ``queue_type``: ``"queue=type"`` entries (comma-separated
    #: in the environment), e.g. ``("orders=quorum",)``.
    queue_types: tuple[str, ...] = ()
    #: For quorum queues, the deliveries of a request beyond the first before it is
    #: dead-lettered (``x-delivery-limit``), e.g. when it kills every worker that takes it.
    delivery_limit: int = 5
    #: For quorum queues, the dead-letter exchange and queue (one name) the worker
    #: declares and answers poison requests from; ``""`` turns dead-lettering off.
    dead_letter_queue: str = "taskrpc.dead"
    #: For quorum queues, the seconds the broker has to confirm a request before its call
    #: fails with ``NoQuorum``: a quorum queue that lost its majority neither confirms
    #: nor refuses publishes, and its calls would wait for their deadline. ``0``: they do.
    publish_confirm_timeout: float = 5.0
    #: Mark requests persistent (delivery mode 2); off by default, since an RPC call
    #: rarely outlives a broker restart.
    persistent_requests: bool = False

    # -- Calling tasks (checks, jobs) --
    #: Validate a call's arguments against the task's signature on the caller, before
    #: sending, when this app knows the task; a wrong call fails there with the
    #: ``InvalidArguments`` the worker would have answered.
    check_arguments: bool = True
    #: The prefetch a worker adds when it serves rate-limited tasks, so that up to this
    #: many requests can wait there for their rate without holding up other tasks'.
    rate_limit_headroom: int = 100
    #: The single-active-consumer queue whose token makes one ``taskrpc beat`` the
    #: leader; ``""``: ``taskrpc.beat.<app name>``.
    beat_queue: str = ""
    #: Most ticks of one entry a new beat leader sends for the time nobody led.
    beat_max_catch_up: int = 100
    #: Mark fire-and-forget requests (``Task.publish``, ``ignore_result=True``)
    #: persistent, so that a broker restart does not lose them (with durable queues).
    persistent_jobs: bool = True
    #: Declare classic task queues with ``x-max-priority`` of this value, so that
    #: ``priority=`` (0 to it) orders requests; 0: no priorities. Quorum queues cannot.
    max_priority: int = 0
    #: Let a task wait for the result of a call to a queue its own worker serves (which
    #: can deadlock the pool); refused by default, as in Celery.
    allow_nested_waits: bool = False

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

    def __post_init__(self) -> None:
        if not isinstance(self.broker_url, str):  # a list of nodes
            object.__setattr__(self, "broker_url", join_urls(self.broker_url))
        from .queues import check_type, per_queue_types

        check_type(self.queue_type)
        per_queue_types(self)
        if self.delivery_limit < 1:
            raise ConfigurationError(
                f"delivery_limit must be at least 1, got {self.delivery_limit}"
            )
        if not self.publish_confirm_timeout >= 0:
            raise ConfigurationError(
                "publish_confirm_timeout must be 0 (off) or positive seconds, "
                f"got {self.publish_confirm_timeout}"
            )
        beat = self.broker_heartbeat
        if beat != 0 and not (1 <= beat <= 65535 and float(beat).is_integer()):
            raise ConfigurationError(  # AMQP counts heartbeats in whole seconds (a short)
                f"broker_heartbeat must be 0 (off) or whole seconds from 1 to 65535, got {beat}"
            )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.repr and f.name != "broker_url"
        )
        keys = f"<{len(self.signing_keys)} keys>"
        return f"Settings(broker_url={self.safe_broker_url!r}, {shown}, signing_keys={keys})"

    @property
    def safe_broker_url(self) -> str:
        """The broker URL(s) with every password masked, fit for logs and errors."""
        return safe_url(self.broker_url)


def safe_url(url: str) -> str:
    """Return ``url`` (one URL or a ``;``-separated list) with every password as ``**``."""
    return mask_urls(url)


def _parse(field: dataclasses.Field[Any], raw: str) -> Any:
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    try:
        if kind == "bool":
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith("tuple"):
            return tuple(item.strip() for item in raw.split(",") if item.strip())
    except ValueError as exc:
        name = ENV_PREFIX + field.name.upper()
        raise ConfigurationError(f"{name}={raw!r} is not a valid {kind}") from exc
    return raw
