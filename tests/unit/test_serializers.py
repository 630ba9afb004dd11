"""The serializer registry and the JSON serializer."""

import pytest

from taskrpc.exceptions import ConfigurationError
from taskrpc.serializers import ContentDisallowed, default_registry

json_serializer = default_registry().by_name("json")


@pytest.mark.parametrize(
    "value",
    [0, -1, 2**64, 10**5000, -(10**20000) + 7],
    ids=["0", "-1", "2^64", "1e5000", "-1e20000"],
)
def test_integers_of_any_size_round_trip_exactly(value):
    assert json_serializer.loads(json_serializer.dumps({"v": value}))["v"] == value


@pytest.mark.parametrize("body", [b"[NaN]", b"[Infinity]", b"{", b"\xff\xfe", b"[1] 2"])
def test_invalid_json_is_a_value_error(body):
    with pytest.raises(ValueError):
        json_serializer.loads(body)


def test_only_accepted_content_types_are_decoded():
    registry = default_registry()
    assert registry.for_content_type("application/json") is not None
    for content_type in ("application/x-python-serialize", "text/plain", None):
        with pytest.raises(ContentDisallowed):
            registry.for_content_type(content_type)


def test_an_unknown_serializer_name_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="unknown serializer"):
        default_registry().by_name("yaml")
