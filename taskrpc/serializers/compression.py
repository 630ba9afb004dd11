"""Body compression: ``zlib`` and ``gzip``, named in the message's ``content_encoding``.

Decompression is bounded: it stops as soon as the output would pass the size limit, so a
small "decompression bomb" never inflates beyond it.
"""

from __future__ import annotations

import zlib

from ..exceptions import ContentDisallowed, PayloadTooLarge

#: ``content_encoding`` values meaning "not compressed".
IDENTITY_ENCODINGS = frozenset({"", "binary", "identity", "utf-8", "utf8"})

#: Supported compressions -> zlib ``wbits`` (window size and container format).
WBITS = {"zlib": zlib.MAX_WBITS, "gzip": 16 + zlib.MAX_WBITS}

#: zlib's default trade-off of speed against size.
LEVEL = 6


def check_method(method: str) -> str:
    """Normalise a compression setting: ``""`` (or ``"none"``) or a name in :data:`WBITS`.

    Raises:
        ValueError: Unknown method.
    """
    method = (method or "").strip().lower()
    if method in ("", "none"):
        return ""
    if method not in WBITS:
        raise ValueError(f"unknown compression {method!r} (choose from none, {', '.join(WBITS)})")
    return method


def compress(body: bytes, method: str) -> bytes:
    """Compress ``body`` with ``method`` (a key of :data:`WBITS`)."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, WBITS[method])
    return compressor.compress(body) + compressor.flush()


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``encoding``, producing at most ``limit`` bytes.

    Raises:
        PayloadTooLarge: The output would exceed ``limit`` (it stops there).
        ContentDisallowed: The encoding is not supported.
        ValueError: The compressed data is corrupt, truncated or followed by garbage.
    """
    encoding = (encoding or "").lower()
    if encoding in IDENTITY_ENCODINGS:
        return body
    if encoding not in WBITS:
        raise ContentDisallowed(f"content encoding {encoding!r} is not supported")
    decompressor = zlib.decompressobj(WBITS[encoding])
    try:
        output = decompressor.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"corrupt {encoding} data: {exc}") from None
    if len(output) > limit:
        raise PayloadTooLarge(f"{encoding} body inflates past the limit of {limit} bytes")
    if not decompressor.eof or decompressor.unused_data:
        raise ValueError(f"truncated or trailing data in {encoding} body")
    return output
