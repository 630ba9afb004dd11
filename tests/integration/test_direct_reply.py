"""RabbitMQ direct reply-to, the option beside the callback queue."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from taskrpc import App, InvalidArguments

pytestmark = pytest.mark.broker


@pytest.fixture
def direct_app(broker_url, unique_queue, start_worker):
    app = App("direct", broker_url=broker_url, default_queue=unique_queue, direct_reply_to=True)

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    start_worker(app, pool="threads", concurrency=4)
    yield app
    app.close()


def test_calls_are_answered_through_direct_reply_to(direct_app):
    add = direct_app.tasks["add"]
    assert add.delay(2, 3).get(timeout=10) == 5
    assert direct_app.client._listener.reply_to == "amq.rabbitmq.reply-to"
    with pytest.raises(InvalidArguments):
        add.delay("x", 1).get(timeout=10)


def test_many_calls_from_several_threads(direct_app):
    add = direct_app.tasks["add"]

    def burst(offset: int) -> list[int]:
        return [h.get(timeout=20) for h in [add.delay(offset, i) for i in range(100)]]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(burst, range(0, 4000, 1000)))
    assert results == [[o + i for i in range(100)] for o in range(0, 4000, 1000)]
    assert direct_app.client.unknown_replies == 0


def test_the_asyncio_client_uses_it_too(direct_app):
    add = direct_app.tasks["add"]

    async def main():
        return await asyncio.gather(*(add.call_async(i, 1) for i in range(100)))

    assert asyncio.run(main()) == [i + 1 for i in range(100)]
