"""An app's settings: from its arguments and the environment, then replaced by options.

Both paths check the TLS settings against every broker URL before the app takes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from .exceptions import ConfigurationError
from .settings import Settings
from .transport import tls
from .urls import join_urls


def initial_settings(
    broker_url: str | Sequence[str] | None, settings: Settings | None, options: Mapping[str, Any]
) -> Settings:
    """The settings of a new app: ``settings`` (else those of the environment) with
    ``broker_url`` (a URL, or a list of them) and ``options`` that are not ``None``.

    Raises:
        ConfigurationError: A TLS setting does not fit a broker URL, or an environment
            variable does not parse.
    """
    if broker_url is not None and not isinstance(broker_url, str):
        broker_url = join_urls(broker_url)
    overrides = {"broker_url": broker_url, **options}
    if settings is None:
        settings = Settings.from_env(**overrides)
    else:
        settings = dataclasses.replace(
            settings, **{k: v for k, v in overrides.items() if v is not None}
        )
    tls.check(settings)
    return settings


def replaced_settings(settings: Settings, options: Mapping[str, Any]) -> Settings:
    """``settings`` with ``options`` that are not ``None``.

    Raises:
        ConfigurationError: An option is unknown, or a TLS setting does not fit.
    """
    try:
        settings = dataclasses.replace(
            settings, **{k: v for k, v in options.items() if v is not None}
        )
    except TypeError as exc:
        raise ConfigurationError(str(exc)) from None
    tls.check(settings)
    return settings
