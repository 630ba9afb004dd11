"""The serializer registry (unsafe formats, plug-ins) and the built-in serializers."""

import importlib.metadata
import logging
import pickle

import pytest

from taskrpc.exceptions import ConfigurationError, LimitExceeded
from taskrpc.serializers import (
    ENTRY_POINT_GROUP,
    ContentDisallowed,
    JSONSerializer,
    MsgpackSerializer,
    Registry,
    TextSerializer,
    default_registry,
)

json_serializer = default_registry().by_name("json")


@pytest.mark.parametrize(
    "value",
    [0, -1, 2**64, 10**5000, -(10**20000) + 7, [10**4400, -(10**4400)]],
    ids=["0", "-1", "2^64", "1e5000", "-1e20000", "two-long-ones"],
)
def test_integers_round_trip_exactly_within_the_digit_budget(value):
    assert json_serializer.loads(json_serializer.dumps({"v": value}))["v"] == value


@pytest.mark.parametrize(
    "body",
    [
        b"[" + b"7" * 4_000_000 + b"]",  # converting it would take most of a minute
        b'{"a": "\xc3\xa9",\n "b": [-' + b"7" * 60_000 + b"]}",
        b"[" + b",".join([b"7" * 5000] * 20) + b"]",  # each short enough, too many
    ],
    ids=["one-of-4M-digits", "after-a-newline", "many-long-ones"],
)
def test_long_integers_over_the_budget_are_refused_before_conversion(body):
    with pytest.raises(LimitExceeded) as info:
        json_serializer.loads(body)
    assert info.value.kind == "IntegerTooLong"


def test_the_digit_budget_is_a_setting():
    assert JSONSerializer(max_int_digits=100_000).loads(b"[" + b"7" * 60_000 + b"]")


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


# -- the registry: unsafe formats, plug-ins --------------------------------------------


def test_pickle_is_registered_but_refused_until_enabled(caplog):
    registry = default_registry()
    assert "pickle" in registry.names()
    accept = {"application/x-python-serialize"}
    with pytest.raises(ConfigurationError, match="unsafe"):
        registry.by_name("pickle")
    with pytest.raises(ContentDisallowed):
        registry.for_content_type("application/x-python-serialize", accept)
    with caplog.at_level(logging.WARNING, logger="taskrpc.serializers"):
        registry.enable("pickle")
    assert "UNSAFE" in caplog.text
    serializer = registry.for_content_type("application/x-python-serialize", accept)
    assert serializer.loads(pickle.dumps({"a": (1, 2)})) == {"a": (1, 2)}


def test_enabling_pickle_on_one_app_leaves_others_safe():
    from taskrpc import App

    first, second = App("a", broker_url="memory://"), App("b", broker_url="memory://")
    first.serializers.enable("pickle")
    first.serializers.by_name("pickle")
    with pytest.raises(ConfigurationError):
        second.serializers.by_name("pickle")


def test_an_object_without_the_serializer_methods_is_refused():
    with pytest.raises(ConfigurationError):
        Registry().register(object())


class FakeEntryPoint:
    """Stands in for an installed plug-in's entry point."""

    def __init__(self, name: str, loaded: object, value: str = "plugin:Thing") -> None:
        self.name, self.value, self._loaded, self.loads = name, value, loaded, 0

    def load(self) -> object:
        self.loads += 1
        if isinstance(self._loaded, Exception):
            raise self._loaded
        return self._loaded


class Reversed:
    name = "reversed"
    content_type = "application/x-reversed"

    def dumps(self, data):
        return str(data).encode()[::-1]

    def loads(self, body):
        return body[::-1].decode()


@pytest.fixture
def plugins(monkeypatch):
    """Replace the installed entry points with a list the test fills."""
    found: list[FakeEntryPoint] = []
    calls: list[str] = []

    def entry_points(group: str):
        calls.append(group)
        return list(found)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return found, calls


def test_plugins_load_on_first_lookup_of_an_unknown_name_only(plugins):
    found, calls = plugins
    entry_point = FakeEntryPoint("reversed", Reversed)
    found.append(entry_point)
    registry = default_registry()
    registry.by_name("json")
    assert calls == [] and entry_point.loads == 0  # known names never look
    assert registry.by_name("reversed").dumps("abc") == b"cba"
    assert calls == [ENTRY_POINT_GROUP] and entry_point.loads == 1
    registry.by_name("reversed")
    assert entry_point.loads == 1


def test_an_accepted_content_type_of_an_unloaded_plugin_finds_it(plugins):
    found, _ = plugins
    found.append(FakeEntryPoint("reversed", Reversed()))
    registry = default_registry()
    serializer = registry.for_content_type("application/x-reversed", {"application/x-reversed"})
    assert serializer.loads(b"cba") == "abc"


@pytest.mark.parametrize("loaded", [ImportError("no module"), Reversed], ids=["broken", "misnamed"])
def test_a_broken_or_misnamed_plugin_is_a_configuration_error(plugins, loaded):
    found, _ = plugins
    found.append(FakeEntryPoint("other", loaded))
    with pytest.raises(ConfigurationError, match="plug-in"):
        default_registry().by_name("other")


def test_importing_taskrpc_loads_no_plugin():
    import subprocess
    import sys

    code = (
        "import importlib.metadata as m\n"
        "calls = []\n"
        "real = m.entry_points\n"
        "m.entry_points = lambda **kw: calls.append(kw) or real(**kw)\n"
        "import taskrpc, taskrpc.fibonacci\n"
        "print([c for c in calls if c.get('group') == 'taskrpc.serializers'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


# -- msgpack and text -----------------------------------------------------------------


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**400, -(10**400), 2**63 - 1, -(2**63)])
def test_msgpack_carries_integers_of_any_size_exactly(value):
    serializer = MsgpackSerializer()
    data = {"v": [value, {"n": value}], "s": "é", "f": 1.5, "b": True, "none": None}
    assert serializer.loads(serializer.dumps(data)) == data


def test_msgpack_refuses_a_big_integer_over_the_digit_budget_and_deep_nesting():
    serializer = MsgpackSerializer()
    with pytest.raises(LimitExceeded) as info:
        serializer.loads(serializer.dumps(10**60_000))
    assert info.value.kind == "IntegerTooLong"
    with pytest.raises(LimitExceeded) as info:
        serializer.loads(b"\x91" * 100_000 + b"\xc0")
    assert info.value.kind == "NestingTooDeep"


@pytest.mark.parametrize(
    "body", [b"\x92\x01", b"\xc1", b"\x01\x02", b"\xd4\x07\x00", b"\x81\x01\x02"]
)
def test_malformed_msgpack_is_a_value_error(body):
    with pytest.raises(ValueError):
        MsgpackSerializer().loads(body)


def test_msgpack_without_the_package_asks_for_the_extra(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigurationError, match=r"taskrpc\[msgpack\]"):
        default_registry().by_name("msgpack")


@pytest.mark.parametrize(
    ("value", "body"),
    [
        ("30", b"30"),
        (832040, b"832040"),
        (10**5000, b"1" + b"0" * 5000),
        (1.5, b"1.5"),
        (None, b"null"),
    ],
    ids=["str", "int", "huge-int", "float", "none"],
)
def test_text_writes_strings_as_they_are_and_scalars_as_json(value, body):
    assert TextSerializer().dumps(value) == body
    assert TextSerializer().loads(body) == body.decode()


@pytest.mark.parametrize("value", [[1], {"a": 1}])
def test_text_refuses_containers(value):
    with pytest.raises(ValueError):
        TextSerializer().dumps(value)


def test_text_refuses_invalid_utf8():
    with pytest.raises(ValueError):
        TextSerializer().loads(b"\xff")
