"""Task queue arguments, the queue-type settings, and what a refusal is explained as."""

from __future__ import annotations

import pytest

from taskrpc import ConfigurationError, PoisonRequest, Settings
from taskrpc.messages import ErrorInfo
from taskrpc.queues import dead_letters_needed, explain_refusal, queue_arguments, queue_type
from taskrpc.worker.poison import death_of, delivery_count


def test_classic_queues_are_declared_with_no_arguments_as_before():
    assert queue_arguments(Settings(), "taskrpc.default") == {}


def test_quorum_queues_carry_type_delivery_limit_and_dead_letter_exchange():
    settings = Settings(queue_type="quorum", delivery_limit=4)
    assert queue_arguments(settings, "orders") == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 4,
        "x-dead-letter-exchange": "taskrpc.dead",
    }
    off = Settings(queue_type="quorum", dead_letter_queue="")
    assert "x-dead-letter-exchange" not in queue_arguments(off, "orders")
    assert not dead_letters_needed(off, ["orders"])


def test_a_queue_may_have_its_own_type():
    settings = Settings.from_env({"TASKRPC_QUEUE_TYPES": "orders=quorum, reports = classic"})
    assert queue_type(settings, "orders") == "quorum"
    assert queue_type(settings, "reports") == "classic"
    assert queue_type(settings, "other") == "classic"
    assert dead_letters_needed(settings, ["reports", "orders"])
    assert not dead_letters_needed(settings, ["reports"])
    everywhere = Settings(queue_type="quorum", queue_types=("legacy=classic",))
    assert queue_arguments(everywhere, "legacy") == {}


@pytest.mark.parametrize(
    "options",
    [
        {"queue_type": "stream"},
        {"queue_types": ("orders:quorum",)},
        {"queue_types": ("orders=lazy",)},
        {"delivery_limit": 0},
    ],
)
def test_bad_queue_settings_are_configuration_errors(options):
    with pytest.raises(ConfigurationError):
        Settings(**options)


@pytest.mark.parametrize(
    ("refusal", "says"),
    [
        (
            "inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received the value "
            "'quorum' of type 'longstr' but current is none",
            ["queue 'q' exists as a classic queue", "TASKRPC_QUEUE_TYPE"],
        ),
        (
            "inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received none but "
            "current is the value 'quorum' of type 'longstr'",
            ["exists as a quorum queue", "queue_types for this queue alone"],
        ),
        (
            "inequivalent arg 'x-delivery-limit' for queue 'q' in vhost '/': received '2' but "
            "current is '5'",
            ["exists with x-delivery-limit '5'", "TASKRPC_DELIVERY_LIMIT"],
        ),
        (
            "inequivalent arg 'x-dead-letter-exchange' for queue 'q' in vhost '/': received the "
            "value 'taskrpc.dead' of type 'longstr' but current is none",
            ["a classic queue, or a quorum queue", "TASKRPC_DEAD_LETTER_QUEUE"],
        ),
    ],
)
def test_a_refused_declaration_names_the_setting_to_change(refusal, says):
    text = explain_refusal(f"Queue.declare: (406) PRECONDITION_FAILED - {refusal}")
    assert text is not None
    for part in says:
        assert part in text
    assert explain_refusal("ACCESS_REFUSED - no access") is None


def test_poison_request_travels_as_data_and_names_the_delivery_count():
    error = PoisonRequest(
        "dead-lettered", type_name="PoisonRequest", details={"delivery_count": 6, "queue": "q"}
    )
    rebuilt = ErrorInfo.from_exception(error).to_exception()
    assert type(rebuilt) is PoisonRequest and rebuilt.delivery_count == 6
    assert PoisonRequest("x").delivery_count is None


def test_delivery_count_comes_from_the_quorum_header_else_the_redelivered_flag():
    assert delivery_count({"x-delivery-count": 3}, True) == 3
    assert delivery_count({}, True) == 1
    assert delivery_count({}, False) == 0
    assert delivery_count({"x-delivery-count": "3"}, False) == 0


def test_the_first_death_is_read_from_the_dead_letter_headers():
    headers = {
        "x-death": [{"count": 1, "reason": "delivery_limit", "queue": "orders"}],
        "x-first-death-reason": "delivery_limit",
        "x-first-death-queue": "orders",
    }
    assert death_of(headers) == ("delivery_limit", "orders")
    assert death_of({"x-death": [{"reason": "expired", "queue": "q"}]}) == ("expired", "q")
    assert death_of({}) is None
