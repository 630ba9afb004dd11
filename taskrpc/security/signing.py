"""Message signing: HMAC-SHA256 with shared keys, key rotation by id, a replay window.

A signature covers the body exactly as sent (compressed, if it was) and everything that
decides what the message does and where its answer goes: its kind (request or reply),
content type and encoding, ``correlation_id``, ``reply_to``, routing key, and every
``taskrpc-*`` header (task name, deadline, protocol, status), including the signing
headers themselves:

* ``taskrpc-key-id``: which key signed it; receivers hold several keys during a rotation;
* ``taskrpc-signed-at``: when, in seconds since the epoch; outside the window it is refused;
* ``taskrpc-nonce``: a fresh id per signature; a request seen again within the window is
  refused too, unless the broker marks it redelivered and it was not answered yet (a
  lost ack, not a replay; see :mod:`taskrpc.security.replay`);
* ``taskrpc-signature``: the hex HMAC.

Headers other than ``taskrpc-*`` are not covered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..exceptions import BadSignature, ConfigurationError
from .canonical import canonical_json, covered_fields
from .replay import DEFAULT_CAPACITY, ReplayGuard

#: Header naming the key that signed the message.
HEADER_KEY_ID = "taskrpc-key-id"
#: Header with the signing time, seconds since the Unix epoch (float).
HEADER_SIGNED_AT = "taskrpc-signed-at"
#: Header with a fresh random id per signature.
HEADER_NONCE = "taskrpc-nonce"
#: Header with the hex HMAC-SHA256.
HEADER_SIGNATURE = "taskrpc-signature"

#: Shortest secret accepted, in bytes.
MIN_SECRET_BYTES = 16
#: Version tag at the start of the signed text; changes if the covered fields change.
_DOMAIN = b"taskrpc-hmac-sha256-v1\n"


@dataclasses.dataclass(frozen=True)
class SigningKey:
    """A shared secret and the id messages name it by."""

    id: str
    secret: bytes = dataclasses.field(repr=False)

    @classmethod
    def parse(cls, entry: str) -> SigningKey:
        """Read ``"key-id:secret"`` (the secret may contain colons).

        Raises:
            ConfigurationError: Malformed, or the secret is too short. The message never
                contains the secret.
        """
        key_id, sep, secret = entry.strip().partition(":")
        if not sep or not key_id.strip():
            raise ConfigurationError("signing keys must look like 'key-id:secret'")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"signing key {key_id.strip()!r} is shorter than {MIN_SECRET_BYTES} bytes"
            )
        return cls(key_id.strip(), secret.encode())


@dataclasses.dataclass(frozen=True)
class Envelope:
    """What a signature covers besides the body."""

    #: ``"request"`` or ``"reply"``: a reply can never pass for a request.
    kind: str
    content_type: str | None
    content_encoding: str | None
    correlation_id: str | None
    reply_to: str | None
    routing_key: str | None
    headers: Mapping[str, Any]


class Signer:
    """Signs outgoing messages with the first key and verifies incoming ones with any.

    Parameters:
        keys: Current key first; older keys still verify during a rotation.
        window: Seconds either side of now a signature stays valid.
        clock: Source of the time (tests pass their own).
        remember: Request nonces remembered at most to refuse replays within the window
            (see :mod:`taskrpc.security.replay`).

    Example:
        >>> signer = Signer([SigningKey("k1", b"0123456789abcdef")], window=60)
        >>> envelope = Envelope("request", "application/json", None, "id1", "q", "tasks", {})
        >>> headers = signer.sign(b"{}", envelope)
        >>> signer.verify(b"{}", dataclasses.replace(envelope, headers=headers))
    """

    def __init__(
        self,
        keys: Sequence[SigningKey],
        *,
        window: float = 300.0,
        clock: Callable[[], float] = time.time,
        remember: int = DEFAULT_CAPACITY,
    ) -> None:
        if not keys:
            raise ConfigurationError("a signer needs at least one key")
        if not window > 0:
            raise ConfigurationError(f"the signature window must be positive, got {window!r}")
        self._current = keys[0]
        self._keys = {key.id: key for key in keys}
        self.window = float(window)
        self._clock = clock
        self.replays = ReplayGuard(self.window, remember)

    @classmethod
    def from_entries(cls, entries: Iterable[str] | str, *, window: float) -> Signer | None:
        """A signer for ``"id:secret"`` entries (or one comma-separated string); ``None``
        when there are none."""
        if isinstance(entries, str):
            entries = entries.split(",")
        keys = [SigningKey.parse(entry) for entry in entries if entry.strip()]
        return cls(keys, window=window) if keys else None

    def __repr__(self) -> str:
        return f"<Signer keys={list(self._keys)} window={self.window:g}>"

    def sign(self, body: bytes, envelope: Envelope, *, key_id: str | None = None) -> dict[str, Any]:
        """Return the signing headers to add to the message described by ``envelope``.

        ``key_id`` picks a key this signer holds (a worker answers with the key the request
        was signed with, so that clients not yet given a new key can still read replies
        during a rotation); otherwise, or if unknown, the current (first) key signs.
        """
        key = self._keys.get(key_id, self._current) if key_id else self._current
        headers = {
            HEADER_KEY_ID: key.id,
            HEADER_SIGNED_AT: self._clock(),
            HEADER_NONCE: uuid.uuid4().hex,
        }
        signed = dataclasses.replace(envelope, headers={**envelope.headers, **headers})
        headers[HEADER_SIGNATURE] = _mac(key.secret, body, signed)
        return headers

    def verify(self, body: bytes, envelope: Envelope, *, redelivered: bool = False) -> None:
        """Check the signature, its age and (for requests) that it is not a replay.

        Raises:
            BadSignature: Unsigned, unknown key, wrong signature, outside the window, or a
                request nonce seen before that the broker does not mark redelivered.
        """
        headers = envelope.headers
        signature, key_id = headers.get(HEADER_SIGNATURE), headers.get(HEADER_KEY_ID)
        if not isinstance(signature, str) or not isinstance(key_id, str):
            raise BadSignature(f"unsigned {envelope.kind}: signatures are required")
        key = self._keys.get(key_id)
        if key is None:
            raise BadSignature(f"{envelope.kind} signed with an unknown key {key_id[:64]!r}")
        if not hmac.compare_digest(_mac(key.secret, body, envelope), signature):
            raise BadSignature(f"{envelope.kind} signature does not match its content")
        signed_at = headers.get(HEADER_SIGNED_AT)
        now = self._clock()
        if isinstance(signed_at, bool) or not isinstance(signed_at, (int, float)):
            raise BadSignature(f"{envelope.kind} has no valid {HEADER_SIGNED_AT} header")
        if not abs(now - signed_at) <= self.window:
            raise BadSignature(
                f"{envelope.kind} signed {now - signed_at:.0f} s from now, "
                f"outside the {self.window:g} s window: a replay or a skewed clock"
            )
        if envelope.kind == "request":
            nonce = headers.get(HEADER_NONCE)
            if not isinstance(nonce, str) or not nonce:
                raise BadSignature(f"request has no valid {HEADER_NONCE} header")
            self.replays.check(nonce, signed_at=signed_at, now=now, redelivered=redelivered)

    def mark_answered(self, headers: Mapping[str, Any]) -> None:
        """Record that the verified request with these headers was answered."""
        nonce, signed_at = headers.get(HEADER_NONCE), headers.get(HEADER_SIGNED_AT)
        if isinstance(nonce, str) and isinstance(signed_at, (int, float)):
            self.replays.mark_answered(nonce, signed_at)

    def answered(self, headers: Mapping[str, Any]) -> bool:
        """Whether the verified request with these headers was answered already."""
        nonce, signed_at = headers.get(HEADER_NONCE), headers.get(HEADER_SIGNED_AT)
        if not isinstance(nonce, str) or not isinstance(signed_at, (int, float)):
            return False
        return self.replays.answered(nonce, signed_at)


def _mac(secret: bytes, body: bytes, envelope: Envelope) -> str:
    covered = covered_fields(
        envelope.kind,
        envelope.content_type,
        envelope.content_encoding,
        envelope.correlation_id,
        envelope.reply_to,
        envelope.routing_key,
        envelope.headers,
    )
    try:
        text = canonical_json(covered)
    except (TypeError, ValueError) as exc:  # e.g. a bytes or NaN taskrpc-* header
        raise BadSignature(f"{envelope.kind} cannot be signed or verified: {exc}") from None
    mac = hmac.new(secret, _DOMAIN, hashlib.sha256)
    mac.update(text.encode())
    mac.update(b"\n")
    mac.update(body)
    return mac.hexdigest()
