"""TLS to the broker: ``amqps://`` URLs, their settings, and errors that say what is wrong.

An ``amqps://`` URL turns TLS on (RabbitMQ's TLS port is 5671 by default). The broker's
certificate is always verified, against ``broker_tls_ca`` (a PEM file) or else the
system's trusted CAs, and by default it must name the URL's host
(``broker_tls_verify_hostname``). ``broker_tls_cert`` and ``broker_tls_key`` present a
client certificate to a broker that asks for one. TLS settings with an ``amqp://`` URL
are refused: a CA file set for a plaintext URL is a mistake, not a choice.

:func:`explain` turns a failed connection into one sentence that says which of the usual
mistakes it was: an untrusted certificate, a host name the certificate does not list,
TLS to a plaintext port or plaintext to a TLS port, a client certificate refused.

py-amqp decrypts whole TLS records (up to 16 KiB) while it asks for a few bytes at a
time, so frames may wait inside the TLS layer while the socket itself is not readable;
the read-ahead and that check live with py-amqp's other internals in
:mod:`taskrpc.transport.compat`.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError
from ..settings import Settings
from ..urls import split_urls

#: The verification codes OpenSSL gives when the certificate does not name the host.
_HOSTNAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
#: Seconds a port's answer to :func:`speaks_tls` is remembered.
PROBE_MEMORY = 60.0
_probed: dict[tuple[str, int], tuple[bool, float]] = {}

#: Reasons OpenSSL gives when the other end does not speak TLS at all.
_NOT_TLS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}


def uses_tls(url: str) -> bool:
    """Whether ``url`` (the first, in a ``;``-separated list) asks for TLS."""
    return url.strip().lower().startswith("amqps://")


def check(settings: Settings) -> None:
    """Check the TLS settings against every URL of ``settings.broker_url``.

    Raises:
        ConfigurationError: As :func:`ssl_options` does.
    """
    for url in split_urls(settings.broker_url):
        ssl_options(settings, url)


def ssl_options(settings: Settings, url: str | None = None) -> dict[str, Any] | None:
    """py-amqp's TLS options for connecting to ``url`` (default: ``settings.broker_url``).

    Returns ``None`` for a plaintext URL. The files are loaded once here, so that a
    missing or unreadable one is reported by the name of its setting.

    Raises:
        ConfigurationError: TLS settings given for a plaintext URL, or a file that does
            not load.
    """
    url = settings.broker_url if url is None else url
    if not uses_tls(url):
        given = [
            name
            for name in ("broker_tls_ca", "broker_tls_cert", "broker_tls_key")
            if getattr(settings, name)
        ]
        if given:
            raise ConfigurationError(
                f"{', '.join(given)} set, but the broker URL is not amqps://: use an amqps:// "
                "URL (and the broker's TLS port) or leave the TLS settings empty"
            )
        return None
    _check_files(settings)
    options: dict[str, Any] = {
        "cert_reqs": ssl.CERT_REQUIRED,
        "tls_minimum_version": ssl.TLSVersion.TLSv1_2,
        "ca_certs": settings.broker_tls_ca or None,
        "certfile": settings.broker_tls_cert or None,
        "keyfile": settings.broker_tls_key or None,
    }
    if settings.broker_tls_verify_hostname:
        # Set it ourselves: kombu would use its own rewrite of the host ("localhost"
        # becomes "127.0.0.1"), and leaving the key out is what turns the check off.
        options["server_hostname"] = urlsplit(url.split(";")[0].strip()).hostname
    return options


def _check_files(settings: Settings) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if settings.broker_tls_key and not settings.broker_tls_cert:
        raise ConfigurationError("broker_tls_key is set but broker_tls_cert is not")
    if settings.broker_tls_ca:
        try:
            context.load_verify_locations(cafile=_readable("broker_tls_ca", settings.broker_tls_ca))
        except ssl.SSLError as exc:
            raise ConfigurationError(f"broker_tls_ca: cannot load: {exc}") from None
    if settings.broker_tls_cert:
        key = settings.broker_tls_key
        try:
            context.load_cert_chain(
                _readable("broker_tls_cert", settings.broker_tls_cert),
                _readable("broker_tls_key", key) if key else None,
                password=_no_password,
            )
        except ssl.SSLError as exc:
            raise ConfigurationError(f"broker_tls_cert/key: cannot load: {exc}") from None


def _readable(setting: str, path: str) -> str:
    if not os.access(path, os.R_OK):
        raise ConfigurationError(f"{setting}={path!r}: no such readable file")
    return path


def _no_password() -> str:
    raise ConfigurationError("broker_tls_key is encrypted: give an unencrypted key file")


def explain(exc: BaseException, settings: Settings, url: str | None = None) -> str | None:
    """Say in one sentence why connecting to ``url`` failed, if it was about TLS.

    Returns ``None`` when the failure has nothing to do with TLS. Never includes the
    password (only the host, the port and the TLS settings).
    """
    url = settings.broker_url if url is None else url
    for error in _causes(exc):
        if isinstance(error, ssl.SSLCertVerificationError):
            return _verify_failure(error, settings, url)
        if isinstance(error, ssl.SSLError):
            return _handshake_failure(error, settings)
    if uses_tls(url) or not any(_is_hang_up(error) for error in _causes(exc)):
        return None
    parts = urlsplit(url.split(";")[0].strip())
    host, port = parts.hostname or "localhost", parts.port or 5672
    if speaks_tls(host, port, timeout=min(settings.connect_timeout, 2.0)):
        return (
            f"the broker's port {host}:{port} expects TLS, but the URL is amqp://: "
            "use an amqps:// URL"
        )
    return None


def _verify_failure(error: ssl.SSLCertVerificationError, settings: Settings, url: str) -> str:
    reason = error.verify_message or str(error)
    if error.verify_code in _HOSTNAME_MISMATCH:
        host = urlsplit(url.split(";")[0].strip()).hostname
        return (
            f"TLS: the broker's certificate is not valid for the host {host!r} ({reason}): "
            "connect by a name the certificate lists, or set broker_tls_verify_hostname=false"
        )
    trusted_by = (
        f"the CA in broker_tls_ca={settings.broker_tls_ca!r}"
        if settings.broker_tls_ca
        else "any CA this system trusts (set broker_tls_ca to your CA's PEM file)"
    )
    return f"TLS: the broker's certificate is not trusted ({reason}): not signed by {trusted_by}"


def _handshake_failure(error: ssl.SSLError, settings: Settings) -> str:
    reason = str(error.reason or error)
    if reason.upper() in _NOT_TLS:
        return (
            f"TLS: the broker's port does not speak TLS ({reason}): it looks like a plain "
            "AMQP port; use the broker's TLS port (5671 by default), or an amqp:// URL"
        )
    # Under TLS 1.3 the broker checks a client certificate after the client thinks the
    # handshake is done: a refusal shows as an alert or a bare EOF on the first read.
    refused = isinstance(error, ssl.SSLEOFError) or (
        "ALERT" in reason.upper() and ("CERTIFICATE" in reason.upper() or "CA" in reason.upper())
    )
    if refused and settings.broker_tls_cert:
        return (
            f"TLS: the broker refused the client certificate ({reason}; "
            f"broker_tls_cert={settings.broker_tls_cert!r}): it wants one its CA signed"
        )
    if refused:
        return (
            f"TLS: the broker ended the handshake ({reason}): does it require a client "
            "certificate (broker_tls_cert, broker_tls_key)?"
        )
    return f"TLS handshake with the broker failed: {reason}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _is_hang_up(error: BaseException) -> bool:
    if isinstance(error, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return True
    if isinstance(error, OSError) and error.errno in {errno.ECONNRESET, errno.EPIPE}:
        return True
    return "unexpectedly closed" in str(error) or "Socket closed" in str(error)


def speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Whether a TLS handshake with ``host:port`` gets a TLS answer (certificates unchecked).

    The answer is remembered for :data:`PROBE_MEMORY` seconds, so that a client retrying
    a broker that keeps hanging up does not double its connection attempts.
    """
    key, now = (host, port), time.monotonic()
    known = _probed.get(key)
    if known is not None and now - known[1] < PROBE_MEMORY:
        return known[0]
    answer = _probe(host, port, timeout)
    _probed[key] = (answer, now)
    return answer


def _probe(host: str, port: int, timeout: float) -> bool:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=host):
                return True
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):  # hung up without a word
        return False
    except ssl.SSLError as exc:  # a TLS alert is a TLS answer; a non-TLS reply is not
        return str(exc.reason or "").upper() not in _NOT_TLS
    except OSError:
        return False
