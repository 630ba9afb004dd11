"""AMQP 0-9-1 frames on the hot path: ``basic.publish`` and ``basic.ack`` written, content
header properties read.

py-amqp encodes every method through a generic, format-string-driven serializer: about
15 µs of a 22 µs publish (measured), paid twice per call (request and reply). These
encoders build the same bytes with a handful of ``struct.pack`` calls. They cover the
basic properties and the header-table value types taskrpc sends (strings, booleans,
floats, 32-bit integers); any other table falls back to py-amqp's own encoder, so the
bytes on the wire are the ones py-amqp would write. :func:`decode_properties` reads the
same flat tables back, and hands anything else (nested tables, arrays, decimals,
timestamps in a table) to py-amqp's decoder, so what it returns is what py-amqp returns.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from amqp.serialization import decode_properties_basic, dumps

_FRAME_METHOD, _FRAME_HEADER, _FRAME_BODY = 1, 2, 3
_FRAME_END = b"\xce"
_BASIC = 60
_PUBLISH, _ACK = 40, 80
#: Bytes of a frame that are not payload: type, channel, size, and the end octet.
FRAME_OVERHEAD = 8

_frame_head = struct.Struct(">BHI").pack
_method_head = struct.Struct(">HHH").pack  # class, method, and publish's reserved short
_content_head = struct.Struct(">HHQH").pack  # class, weight, body size, property flags
_ack_frame = struct.Struct(">BHIHHQB").pack
_byte = struct.Struct("B").pack
_long = struct.Struct(">I").pack

# Basic properties in wire order: (name, flag bit, kind); "s" shortstr, "F" table,
# "o" octet, "L" 64-bit timestamp.
_PROPERTIES = (
    ("content_type", 1 << 15, "s"),
    ("content_encoding", 1 << 14, "s"),
    ("application_headers", 1 << 13, "F"),
    ("delivery_mode", 1 << 12, "o"),
    ("priority", 1 << 11, "o"),
    ("correlation_id", 1 << 10, "s"),
    ("reply_to", 1 << 9, "s"),
    ("expiration", 1 << 8, "s"),
    ("message_id", 1 << 7, "s"),
    ("timestamp", 1 << 6, "L"),
    ("type", 1 << 5, "s"),
    ("user_id", 1 << 4, "s"),
    ("app_id", 1 << 3, "s"),
    ("cluster_id", 1 << 2, "s"),
)
_KNOWN = frozenset(name for name, _, _ in _PROPERTIES)


def _shortstr(value: str) -> bytes:
    data = value.encode("utf-8")
    if len(data) > 255:
        raise ValueError(f"AMQP short string longer than 255 bytes: {value[:40]!r}...")
    return _byte(len(data)) + data


def encode_table(table: Mapping[str, Any]) -> bytes:
    """A field table, length first, as py-amqp encodes it."""
    parts = []
    for key, value in table.items():
        name = key.encode("utf-8")
        kind = type(value)
        if kind is str:
            data = value.encode("utf-8")
            parts.append(b"%c%sS%s%s" % (len(name), name, _long(len(data)), data))
        elif kind is bool:
            parts.append(b"%c%st%c" % (len(name), name, value))
        elif kind is float:
            parts.append(b"%c%sd%s" % (len(name), name, struct.pack(">d", value)))
        elif kind is int and -2147483647 <= value <= 2147483647:
            parts.append(b"%c%sI%s" % (len(name), name, struct.pack(">i", value)))
        else:  # nested tables, arrays, bytes, big integers...: py-amqp's encoder
            encoded: bytes = dumps("F", (table,))
            return encoded
    data = b"".join(parts)
    return _long(len(data)) + data


def encode_properties(properties: Mapping[str, Any]) -> tuple[int, bytes]:
    """``(flags, encoded values)`` of basic properties (names as py-amqp's).

    Raises:
        ValueError: An unknown property name.
    """
    flags, parts, seen = 0, [], 0
    for name, bit, kind in _PROPERTIES:
        if name not in properties:
            continue
        seen += 1
        value = properties[name]
        if value is None:
            continue
        flags |= bit
        if kind == "s":
            parts.append(_shortstr(value))
        elif kind == "F":
            parts.append(encode_table(value))
        elif kind == "o":
            parts.append(_byte(value))
        else:
            parts.append(struct.pack(">Q", value))
    if seen != len(properties):  # counted, not a set difference per publish
        unknown = sorted(set(properties) - _KNOWN)
        raise ValueError(f"unknown AMQP basic properties: {unknown}")
    return flags, b"".join(parts)


def encode_publish(
    channel_id: int,
    frame_max: int,
    exchange: str,
    routing_key: str,
    mandatory: bool,
    body: bytes,
    properties: Mapping[str, Any],
) -> bytes:
    """The frames of one ``basic.publish``: method, content header, and body frames."""
    method = b"%s%s%s%c" % (
        _method_head(_BASIC, _PUBLISH, 0),
        _shortstr(exchange),
        _shortstr(routing_key),
        1 if mandatory else 0,  # bits: mandatory, immediate (never set)
    )
    flags, values = encode_properties(properties)
    header = _content_head(_BASIC, 0, len(body), flags) + values
    frames = [
        _frame_head(_FRAME_METHOD, channel_id, len(method)),
        method,
        _FRAME_END,
        _frame_head(_FRAME_HEADER, channel_id, len(header)),
        header,
        _FRAME_END,
    ]
    chunk = frame_max - FRAME_OVERHEAD
    for start in range(0, len(body), chunk):
        part = body[start : start + chunk]
        frames += (_frame_head(_FRAME_BODY, channel_id, len(part)), part, _FRAME_END)
    return b"".join(frames)


def encode_ack(channel_id: int, delivery_tag: int, multiple: bool) -> bytes:
    """The frame of one ``basic.ack``."""
    return _ack_frame(_FRAME_METHOD, channel_id, 13, _BASIC, _ACK, delivery_tag, multiple) + (
        _FRAME_END
    )


_ushort = struct.Struct(">H").unpack_from
_ulong = struct.Struct(">I").unpack_from
#: Table value types read here: letter -> (struct, size). Others go to py-amqp.
_SCALARS = {
    ord(letter): (struct.Struct(fmt).unpack_from, struct.calcsize(fmt))
    for letter, fmt in (
        ("t", ">B"), ("b", ">b"), ("B", ">B"), ("s", ">h"), ("U", ">h"), ("u", ">H"),
        ("I", ">i"), ("i", ">I"), ("L", ">q"), ("l", ">q"), ("f", ">f"), ("d", ">d"),
    )
}  # fmt: skip
_LONGSTR, _VOID, _BOOL = ord("S"), ord("V"), ord("t")


class _Exotic(Exception):
    """A value this decoder leaves to py-amqp."""


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")  # as py-amqp's ``bytes_to_str``


def _flat_table(payload: bytes, offset: int) -> tuple[dict[Any, Any], int]:
    (size,) = _ulong(payload, offset)
    offset += 4
    limit = offset + size
    table: dict[Any, Any] = {}
    while offset < limit:
        length = payload[offset]
        raw_key = payload[offset + 1 : offset + 1 + length]
        offset += 1 + length
        try:
            key: Any = _text(raw_key)
        except UnicodeDecodeError:
            key = raw_key
        kind = payload[offset]
        offset += 1
        if kind == _LONGSTR:
            (length,) = _ulong(payload, offset)
            raw = payload[offset + 4 : offset + 4 + length]
            offset += 4 + length
            try:
                table[key] = _text(raw)
            except UnicodeDecodeError:
                table[key] = raw
        elif kind == _VOID:
            table[key] = None
        else:
            scalar = _SCALARS.get(kind)
            if scalar is None:
                raise _Exotic
            (value,) = scalar[0](payload, offset)
            offset += scalar[1]
            table[key] = bool(value) if kind == _BOOL else value
    return table, offset


def decode_properties(payload: bytes, offset: int) -> tuple[dict[str, Any], int]:
    """``(properties, end)`` of a content header payload whose flags are at ``offset``,
    exactly as py-amqp's ``decode_properties_basic`` would return them.

    Raises:
        Exception: Whatever reading them raises (``struct.error``, ``UnicodeDecodeError``,
            py-amqp's errors for what it reads).
    """
    if type(payload) is not bytes:
        return decode_properties_basic(payload, offset)  # type: ignore[no-any-return]
    start = offset
    (flags,) = _ushort(payload, offset)
    offset += 2
    properties: dict[str, Any] = {}
    try:
        for name, bit, kind in _PROPERTIES:
            if not flags & bit:
                continue
            if kind == "s":
                end = offset + 1 + payload[offset]
                properties[name] = _text(payload[offset + 1 : end])
                offset = end
            elif kind == "F":
                properties[name], offset = _flat_table(payload, offset)
            elif kind == "o":
                properties[name] = payload[offset]
                offset += 1
            else:
                (properties[name],) = struct.unpack_from(">Q", payload, offset)
                offset += 8
    except _Exotic:
        return decode_properties_basic(payload, start)  # type: ignore[no-any-return]
    return properties, offset
