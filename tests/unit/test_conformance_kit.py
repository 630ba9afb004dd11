"""The conformance kit's static vectors (``conformance/*.json``) hold for this implementation,
and ``docs/protocol.rst`` states the same error codes and types."""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from taskrpc.exceptions import ERROR_CODES, BadSignature
from taskrpc.security.canonical import FLOAT_HEADERS, canonical_json, covered_fields
from taskrpc.security.signing import HEADER_SIGNATURE, Envelope, Signer, SigningKey, _mac

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / "conformance"
SIGNING = json.loads((KIT / "signing.json").read_text())
CANONICAL = json.loads((KIT / "canonical.json").read_text())
ERRORS = json.loads((KIT / "errors.json").read_text())


def double(bits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(bits))[0]


@pytest.mark.parametrize("case", CANONICAL["floats"], ids=lambda case: case["canonical"])
def test_floats_have_one_canonical_text(case):
    value = double(case["bits"])
    assert canonical_json(value) == case["canonical"]
    assert struct.pack(">d", float(case["canonical"])).hex() == case["bits"]  # round trip


@pytest.mark.parametrize("kind", ["strings", "integers", "maps"])
def test_other_values_have_one_canonical_text(kind):
    for case in CANONICAL[kind]:
        assert canonical_json(case["value"]) == case["canonical"]


@pytest.mark.parametrize("case", CANONICAL["refused_floats"], ids=lambda case: case["why"])
def test_non_finite_floats_have_none(case):
    with pytest.raises(ValueError):
        canonical_json(double(case["bits"]))


def envelope_of(message: dict[str, Any]) -> tuple[Envelope, bytes]:
    headers = {name: value for name, _, value in message["headers"]}
    fields = ("kind", "content_type", "content_encoding", "correlation_id", "reply_to")
    envelope = Envelope(
        *(message[field] for field in fields), routing_key=message["routing_key"], headers=headers
    )
    return envelope, base64.b64decode(message["body_base64"])


@pytest.mark.parametrize("case", SIGNING["cases"], ids=lambda case: case["name"])
def test_signing_vectors(case):
    envelope, body = envelope_of(case["message"])
    covered = covered_fields(
        envelope.kind,
        envelope.content_type,
        envelope.content_encoding,
        envelope.correlation_id,
        envelope.reply_to,
        envelope.routing_key,
        envelope.headers,
    )
    assert canonical_json(covered) == case["covered"]
    secret = SIGNING["key"]["secret"].encode()
    assert _mac(secret, body, envelope) == case["signature"]
    # And a receiver holding the key accepts it, at the time it was signed.
    signed_at = envelope.headers["taskrpc-signed-at"]
    key = SigningKey(SIGNING["key"]["id"], secret)
    receiver = Signer([key], window=60, clock=lambda: signed_at)
    headers = {**envelope.headers, HEADER_SIGNATURE: case["signature"]}
    signed = Envelope(**{**envelope.__dict__, "headers": headers})
    receiver.verify(body, signed, redelivered=True)
    with pytest.raises(BadSignature):
        receiver.verify(body + b" ", signed, redelivered=True)


def test_an_integer_time_header_signs_as_its_float():
    case = next(c for c in SIGNING["cases"] if c["name"] == "integral-times")
    envelope, body = envelope_of(case["message"])
    assert {"taskrpc-deadline", "taskrpc-tick"} <= {
        name for name, kind, _ in case["message"]["headers"] if kind == "I"
    }
    as_double = {
        name: float(value) if name in FLOAT_HEADERS else value
        for name, value in envelope.headers.items()
    }
    again = Envelope(**{**envelope.__dict__, "headers": as_double})
    assert _mac(SIGNING["key"]["secret"].encode(), body, again) == case["signature"]


def test_a_header_without_canonical_form_cannot_be_signed():
    signer = Signer([SigningKey("k", b"s" * 16)])
    envelope = Envelope("request", None, None, "id", "q", "rk", {"taskrpc-x": b"raw"})
    with pytest.raises(BadSignature):
        signer.sign(b"{}", envelope)


def test_the_error_codes_are_those_of_the_implementation():
    codes = {entry["code"]: entry["exception"] for entry in ERRORS["codes"]}
    assert codes == {code: cls.__name__ for code, cls in ERROR_CODES.items()}


def test_every_error_type_in_the_kit_is_one_the_worker_sends():
    sources = "".join(path.read_text() for path in (ROOT / "taskrpc").rglob("*.py"))
    for entry in ERRORS["codes"]:
        for kind in entry["types"]:
            name = kind["type"]
            if name.startswith("<"):
                continue  # a type taken from an exception
            assert f'type_name="{name}"' in sources or name == "ValueError", name


def test_the_protocol_page_states_every_code_and_type():
    page = (ROOT / "docs" / "protocol.rst").read_text()
    section = page.split("Error codes\n~~~~~~~~~~~", 1)[1].split("\nWorker processing\n", 1)[0]
    for entry in ERRORS["codes"]:
        assert f"``{entry['code']}``" in section, entry["code"]
        assert f":exc:`~taskrpc.{entry['exception']}`" in section, entry["exception"]
        for kind in entry["types"]:
            if not kind["type"].startswith("<"):
                assert re.search(rf"``{kind['type']}``", section), (entry["code"], kind["type"])
