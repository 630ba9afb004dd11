"""Rates and token buckets."""

import pytest

from taskrpc import App, ConfigurationError
from taskrpc.rates import TokenBucket, parse_rate


@pytest.mark.parametrize(
    ("text", "per_second"), [("100/s", 100.0), ("30/m", 0.5), ("36/h", 0.01), (" 2.5 / s", 2.5)]
)
def test_rates_parse_to_tokens_per_second(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["100", "0/s", "-1/s", "5/d", "fast", ""])
def test_a_bad_rate_is_refused_when_the_task_is_defined(text):
    app = App("rates", broker_url="memory://")
    with pytest.raises(ConfigurationError, match="rate limit"):
        app.task(rate_limit=text)(lambda: None)


def test_a_bucket_gives_one_token_then_says_how_long_to_wait():
    bucket = TokenBucket(rate=2.0)
    assert bucket.take()
    assert not bucket.take()
    assert 0 < bucket.wait_time() <= 0.5
