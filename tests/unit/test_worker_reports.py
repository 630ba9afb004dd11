"""What a worker tells its operator: failures with tracebacks, lost children, limits."""

import logging
import multiprocessing
import os

import pytest

from taskrpc import RemoteError, TimeoutPolicy
from taskrpc.worker.processes import _how_it_died


class OutOfStock(Exception):
    pass


@pytest.fixture
def failing(memory_app, start_worker):
    @memory_app.task(throws=(OutOfStock,))
    def order(item: str) -> None:
        if item == "gone":
            raise OutOfStock(f"no {item} left")
        raise ZeroDivisionError(f"division by zero for {item}")

    start_worker(memory_app, pool="threads", concurrency=1)
    return order


def _records(caplog, text):
    return [r for r in caplog.records if r.name == "taskrpc.worker" and text in r.getMessage()]


def test_an_unexpected_failure_is_logged_at_error_with_message_and_traceback(failing, caplog):
    caplog.set_level(logging.INFO, logger="taskrpc.worker")
    with pytest.raises(RemoteError):
        failing.delay("tea").get(timeout=5)
    (record,) = _records(caplog, "failed: ZeroDivisionError: division by zero for tea")
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


def test_an_expected_failure_is_logged_at_warning_with_its_traceback(failing, caplog):
    caplog.set_level(logging.INFO, logger="taskrpc.worker")
    with pytest.raises(RemoteError):
        failing.delay("gone").get(timeout=5)
    (record,) = _records(caplog, "failed: OutOfStock: no gone left")
    assert record.levelno == logging.WARNING and record.exc_info is not None


def test_a_soft_limit_on_the_threads_pool_is_warned_about_at_start(memory_app, caplog):
    from taskrpc import Worker

    @memory_app.task(timeouts=TimeoutPolicy(soft_limit=5))
    def slow() -> None:
        pass

    caplog.set_level(logging.WARNING, logger="taskrpc.worker")
    Worker(memory_app, pool="threads")._check_time_limits()
    assert _records(caplog, "soft time limit, which the threads pool does not enforce")
    caplog.clear()
    Worker(memory_app, pool="processes")._check_time_limits()
    assert not _records(caplog, "soft time limit")


def _kill_self():
    os.kill(os.getpid(), 15)


@pytest.mark.parametrize(
    ("target", "args", "expected"),
    [(os._exit, (3,), "exited with code 3"), (_kill_self, (), "killed by SIGTERM (15)")],
)
def test_a_lost_pool_process_is_described_by_exit_code_or_signal(target, args, expected):
    process = multiprocessing.get_context("fork").Process(target=target, args=args)
    process.start()
    process.join(10)
    assert expected in _how_it_died(process)
