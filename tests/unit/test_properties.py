"""Property-based tests (hypothesis): serializers, codec and envelopes round-trip; signatures
bind every byte; decompression never exceeds its limit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import uuid

import pydantic
import pydantic_core
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskrpc import PayloadTooLarge
from taskrpc.codec import Codec
from taskrpc.exceptions import BadSignature
from taskrpc.messages import ErrorInfo, ReplyBody, RequestBody
from taskrpc.security.signing import Envelope, Signer, SigningKey
from taskrpc.serializers import default_registry
from taskrpc.serializers.compression import decompress
from taskrpc.signature import Signature

settings.register_profile(
    "taskrpc", deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("taskrpc")

#: What serializers receive: JSON-compatible data, integers of any size.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_data = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
serializer_names = st.sampled_from(["json", "msgpack"])
registry = default_registry()


@given(data=json_data, name=serializer_names)
def test_serializers_round_trip_json_compatible_data(data, name):
    serializer = registry.by_name(name)
    assert serializer.loads(serializer.dumps(data)) == data


@given(text=st.text())
def test_text_round_trips_any_string(text):
    serializer = registry.by_name("text")
    assert serializer.loads(serializer.dumps(text)) == text


@given(
    data=json_data,
    name=serializer_names,
    compression=st.sampled_from(["", "zlib", "gzip"]),
    threshold=st.integers(min_value=0, max_value=200),
)
def test_the_codec_round_trips_whatever_it_compresses(data, name, compression, threshold):
    codec = Codec(
        registry,
        max_size=1 << 20,
        compression=compression,
        compression_threshold=threshold,
        accept_requests=("json", "msgpack"),
    )
    encoded = codec.encode(data, name)
    if not compression or len(codec.registry.by_name(name).dumps(data)) < threshold:
        assert encoded.content_encoding == "binary"
    decoded = codec.decode(encoded.body, encoded.content_type, encoded.content_encoding)
    assert decoded == data


@given(
    args=st.lists(json_data, max_size=4),
    kwargs=st.dictionaries(st.text(max_size=8), json_data, max_size=4),
    name=serializer_names,
)
def test_request_envelopes_round_trip(args, kwargs, name):
    codec = Codec(registry, max_size=1 << 20, accept_requests=("json", "msgpack"))
    request = RequestBody(args=args, kwargs=kwargs)
    encoded = codec.encode(request.model_dump(mode="json"), name)
    assert RequestBody.model_validate(codec.decode(encoded.body, encoded.content_type)) == request


@given(
    result=json_data,
    error=st.none()
    | st.builds(
        ErrorInfo,
        code=st.sampled_from(["task_failed", "invalid_arguments", "bad_request"]),
        type=st.text(max_size=20),
        message=st.text(),
        traceback=st.none() | st.text(),
        details=json_data,
    ),
    name=serializer_names,
)
def test_reply_envelopes_round_trip(result, error, name):
    codec = Codec(registry, max_size=1 << 20, accept_replies=("json", "msgpack"))
    reply = ReplyBody(ok=error is None, result=None if error else result, error=error)
    encoded = codec.encode(reply.model_dump(mode="json"), name)
    decoded = codec.decode(encoded.body, encoded.content_type, side="reply")
    assert ReplyBody.model_validate(decoded) == reply


class Item(pydantic.BaseModel):
    name: str
    price: decimal.Decimal
    tags: list[str] = []


def typed_task(
    when: dt.datetime, day: dt.date, key: uuid.UUID, amount: decimal.Decimal, n: int, item: Item
) -> None: ...


@given(
    when=st.datetimes(timezones=st.just(dt.timezone.utc) | st.none()),
    day=st.dates(),
    key=st.uuids(),
    amount=st.decimals(allow_nan=False, allow_infinity=False),
    n=st.integers(min_value=-(10**300), max_value=10**300),
    item=st.builds(Item, name=st.text(), price=st.decimals(allow_nan=False, allow_infinity=False)),
    name=serializer_names,
)
def test_typed_arguments_arrive_exactly_as_sent(when, day, key, amount, n, item, name):
    codec = Codec(registry, max_size=1 << 20, accept_requests=("json", "msgpack"))
    args = [when, day, key, amount, n, item]
    sent = pydantic_core.to_jsonable_python({"args": args, "kwargs": {}})  # as the client does
    encoded = codec.encode(sent, name)
    request = RequestBody.model_validate(codec.decode(encoded.body, encoded.content_type))
    received, _ = Signature(typed_task).validate(request.args, request.kwargs)
    assert received == args


keys = st.builds(
    SigningKey, id=st.text(min_size=1, max_size=8), secret=st.binary(min_size=16, max_size=64)
)
envelopes = st.builds(
    Envelope,
    kind=st.sampled_from(["request", "reply"]),
    content_type=st.none() | st.text(max_size=30),
    content_encoding=st.none() | st.sampled_from(["binary", "zlib"]),
    correlation_id=st.none() | st.text(max_size=40),
    reply_to=st.none() | st.text(max_size=40),
    routing_key=st.none() | st.text(max_size=40),
    headers=st.dictionaries(
        st.text(max_size=10).map(lambda s: "taskrpc-x" + s),
        # Finite floats only: NaN and infinities have no canonical form (BadSignature).
        st.none()
        | st.integers()
        | st.text(max_size=20)
        | st.floats(allow_nan=False, allow_infinity=False),
        max_size=3,
    ),
)


@given(key=keys, envelope=envelopes, body=st.binary(max_size=300), data=st.data())
def test_a_signature_verifies_and_any_changed_body_byte_breaks_it(key, envelope, body, data):
    signer = Signer([key])
    signed = dataclasses.replace(
        envelope, headers={**envelope.headers, **signer.sign(body, envelope)}
    )
    signer.verify(body, signed)
    if body:
        at = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
        flipped = body[:at] + bytes([body[at] ^ data.draw(st.integers(1, 255))]) + body[at + 1 :]
        with pytest.raises(BadSignature):
            signer.verify(flipped, signed)


@given(body=st.binary(max_size=2000), limit=st.integers(min_value=0, max_value=5000))
def test_decompressing_anything_yields_at_most_the_limit(body, limit):
    import zlib

    for encoding, packed in [("zlib", zlib.compress(body)), ("zlib", body), ("gzip", body)]:
        try:
            out = decompress(packed, encoding, limit)
        except (ValueError, PayloadTooLarge):
            continue
        assert len(out) <= limit and out == body
