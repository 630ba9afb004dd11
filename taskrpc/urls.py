"""Broker URL lists: splitting kombu's ``;``-separated form and masking every password.

Kept free of other taskrpc imports so that settings, the transport and the CLI can all
use it. Masking errs on the side of hiding: in a malformed URL, everything between the
user name and the last ``@`` is treated as the password.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: What a password is replaced with wherever a URL is shown.
MASK = "**"

#: Separator of URLs in one string, as kombu's ``Connection`` reads it.
SEPARATOR = ";"


def split_urls(value: str | Iterable[str]) -> tuple[str, ...]:
    """The URLs of ``value``: a ``;``-separated string or a sequence (items may hold ``;``).

    Blank entries are dropped; order is kept.

    Example:
        >>> split_urls("amqp://a//; amqp://b//")
        ('amqp://a//', 'amqp://b//')
    """
    items = [value] if isinstance(value, str) else list(value)
    return tuple(url.strip() for item in items for url in item.split(SEPARATOR) if url.strip())


def join_urls(value: str | Sequence[str]) -> str:
    """``value`` as one ``;``-separated string (what ``Settings.broker_url`` holds)."""
    return SEPARATOR.join(split_urls(value))


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``**``; malformed URLs are masked too.

    Example:
        >>> mask_url("amqp://shop:s3cret@rabbit-1:5672/shop")
        'amqp://shop:**@rabbit-1:5672/shop'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if at < 0:
        return url
    userinfo, hostpart = rest[:at], rest[at + 1 :]
    user, colon, _password = userinfo.partition(":")
    shown = f"{user}:{MASK}" if colon else user
    return f"{scheme}{sep}{shown}@{hostpart}"


def mask_urls(value: str | Iterable[str]) -> str:
    """Every URL of ``value`` masked, joined with ``;``."""
    return SEPARATOR.join(mask_url(url) for url in split_urls(value))


def passwords(value: str | Iterable[str]) -> list[str]:
    """The passwords in ``value``'s URLs (longest first), to scrub from foreign text."""
    found = []
    for url in split_urls(value):
        rest = url.partition("://")[2] or url
        at = rest.rfind("@")
        if at > 0:
            _, colon, password = rest[:at].partition(":")
            if colon and password:
                found.append(password)
    return sorted(set(found), key=len, reverse=True)


def scrub(text: str, value: str | Iterable[str]) -> str:
    """``text`` (e.g. a library's error message) with ``value``'s URLs and passwords masked."""
    for url in split_urls(value):
        text = text.replace(url, mask_url(url))
    for password in passwords(value):
        text = text.replace(password, MASK)
    return text
