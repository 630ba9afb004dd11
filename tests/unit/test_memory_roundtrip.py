"""End to end on the in-process memory transport: the embedded default, no broker."""

import pytest
from pydantic import BaseModel

from taskrpc import InvalidArguments, RemoteError, TimeoutError, UnknownTask


class Pair(BaseModel):
    left: int
    right: int


@pytest.fixture
def tasks(memory_app, start_worker):
    @memory_app.task
    def swap(pair: Pair) -> Pair:
        return Pair(left=pair.right, right=pair.left)

    @memory_app.task
    def fail() -> None:
        raise RuntimeError("nope")

    start_worker(memory_app, pool="threads", concurrency=2)
    return swap, fail


def test_a_model_goes_out_and_comes_back_as_a_model(tasks):
    swap, _ = tasks
    assert swap.delay(Pair(left=1, right=2)).get(timeout=5) == Pair(left=2, right=1)


def test_errors_surface_typed_on_the_caller(tasks, memory_app):
    swap, fail = tasks
    with pytest.raises(RemoteError, match="RuntimeError: nope"):
        fail.delay().get(timeout=5)
    with pytest.raises(InvalidArguments):
        swap.delay({"left": "x"}).get(timeout=5)
    with pytest.raises(UnknownTask):
        memory_app.send_task("missing").get(timeout=5)


def test_get_with_a_short_timeout_raises_our_timeout_error(memory_app):
    result = memory_app.send_task("nobody.serves.this", queue="unserved")
    with pytest.raises(TimeoutError) as info:
        result.get(timeout=0.05)
    assert isinstance(info.value, TimeoutError) and not result.ready()


def test_the_demo_command_runs_on_the_embedded_default():
    from click.testing import CliRunner

    from taskrpc.cli import cli

    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert "fib(90) = 2880067194370816120" in result.output
    assert "refused before it was sent" in result.output
