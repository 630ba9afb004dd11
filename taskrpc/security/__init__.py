"""Payload security: message signing and the allow-list of remote exception types.

The accept lists, size limits and bounded decompression live in :mod:`taskrpc.codec`,
the one place every body passes through.
"""

from ..exceptions import BadSignature
from .remote import RemoteExceptionTypes
from .signing import Envelope, Signer, SigningKey

__all__ = ["BadSignature", "Envelope", "RemoteExceptionTypes", "Signer", "SigningKey"]
