"""Broker URL lists: splitting, masking every password, and the order nodes are tried in."""

from __future__ import annotations

import logging

import pytest

from taskrpc import App, BrokerError, ConfigurationError, Settings
from taskrpc.transport.nodes import BrokerNodes
from taskrpc.urls import join_urls, mask_url, mask_urls, scrub, split_urls

SECRETS = ("Pw-one-11a", "Pw-two-22b", "Pw-th@ree-33c")
URLS = [
    f"amqp://shop:{SECRETS[0]}@rabbit-1:5672/shop",
    f"amqp://shop:{SECRETS[1]}@rabbit-2:5672/shop",
    f"amqp://shop:{SECRETS[2]}@rabbit-3:notaport/shop",  # malformed: '@' and a bad port
]
LIST = ";".join(URLS)


def assert_clean(text: str) -> None:
    for secret in SECRETS + ("Pw-th",):
        assert secret not in text, text


def test_a_list_is_split_and_joined_like_kombu_does():
    assert split_urls(f" {URLS[0]} ;; {URLS[1]} ") == (URLS[0], URLS[1])
    assert split_urls([URLS[0], f"{URLS[1]};{URLS[2]}"]) == tuple(URLS)
    assert join_urls(URLS) == LIST


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://u:p@h:1/v", "amqp://u:**@h:1/v"),
        ("amqp://u:p@x@h//", "amqp://u:**@h//"),
        ("amqp://u@h//", "amqp://u@h//"),
        ("amqp://h//", "amqp://h//"),
        ("u:p@h", "u:**@h"),
        ("memory://", "memory://"),
    ],
)
def test_each_url_is_masked_even_when_malformed(url, shown):
    assert mask_url(url) == shown


def test_every_password_of_a_list_is_masked_in_settings_and_app_reprs():
    app = App("x", broker_url=URLS)
    assert app.settings.broker_url == LIST
    for text in (repr(app), str(app.settings), app.settings.safe_broker_url, mask_urls(LIST)):
        assert_clean(text)
        assert text.count("shop:**@") >= 3 or "broker=" in text
    assert_clean(repr(BrokerNodes(LIST)))
    assert Settings.from_env({"TASKRPC_BROKER_URL": LIST}).broker_url == LIST


def test_foreign_error_text_is_scrubbed_of_urls_and_passwords():
    text = f"boom at {URLS[1]} with {SECRETS[2]}"
    assert_clean(scrub(text, LIST))


def test_nodes_are_tried_in_order_and_the_first_that_answers_wins(caplog):
    nodes = BrokerNodes(LIST)
    tried: list[str] = []

    def connect_one(url: str) -> str:
        tried.append(url)
        if url != URLS[1]:
            raise ConnectionRefusedError(f"refused by {url}")
        return "conn"

    with caplog.at_level(logging.INFO, logger="taskrpc"):
        assert nodes.connect(connect_one) == "conn"
    assert tried == URLS[:2] and nodes.current == 1
    assert "rabbit-1" in caplog.text and "2 of 3" in caplog.text
    assert_clean(caplog.text)


def test_after_losing_a_node_the_next_one_is_tried_first():
    nodes = BrokerNodes(LIST)
    nodes.connect(lambda url: url)
    assert nodes.current == 0
    nodes.lost()
    assert nodes.order() == [1, 2, 0]
    nodes.connect(lambda url: url)
    nodes.lost()
    assert nodes.order() == [2, 0, 1]


def test_shuffle_starts_anywhere_and_keeps_the_rotation():
    starts = {BrokerNodes(LIST, "shuffle").order()[0] for _ in range(60)}
    assert starts == {0, 1, 2}
    order = BrokerNodes(LIST, "shuffle").order()
    assert sorted(order) == [0, 1, 2] and (order[1] - order[0]) % 3 == 1
    with pytest.raises(ConfigurationError, match="broker_failover_strategy"):
        BrokerNodes(LIST, "random")


def test_when_no_node_answers_the_error_names_each_node_masked():
    def refuse(url: str) -> None:
        raise OSError(f"cannot reach {url}, password {SECRETS[0]}")

    with pytest.raises(BrokerError) as info:
        BrokerNodes(LIST).connect(refuse)
    message = str(info.value)
    assert message.startswith("cannot connect to any of 3 broker nodes")
    assert "rabbit-1" in message and "rabbit-2" in message and "rabbit-3" in message
    assert_clean(message)
    assert_clean(repr(info.value))
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_an_empty_list_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="no broker"):
        BrokerNodes(" ; ")
