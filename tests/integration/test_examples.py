"""Every example runs as written: a real worker process, the example's client, its output.

Each test starts ``python -m taskrpc worker`` as a subprocess on a queue of its own
(``TASKRPC_DEFAULT_QUEUE``), waits until the broker reports a consumer on that queue,
runs the example's client as a second subprocess, checks what it printed and how it
exited, then stops the worker with SIGTERM and expects a clean exit (status 0).
"""

from __future__ import annotations

import subprocess

import pytest

from .examples_support import EXAMPLES, StartWorker, example_env, run, shown

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

#: Runs a plain-protocol client with ``import taskrpc`` made to fail.
WITHOUT_TASKRPC = (
    "import runpy, sys; sys.modules['taskrpc'] = None; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)

FIB_90 = "2880067194370816120"


def test_fibonacci_client_gets_results_in_sequence_and_from_threads(
    start_worker_process: StartWorker, broker_url: str, unique_queue: str
) -> None:
    worker = start_worker_process("taskrpc.fibonacci:app", EXAMPLES / "fibonacci")

    env = example_env(None, unique_queue)  # the broker comes from --url alone
    result = run(
        "client.py",
        "--url",
        broker_url,
        "--threads",
        "4",
        "--calls",
        "200",
        cwd=EXAMPLES / "fibonacci",
        env=env,
    )

    assert result.returncode == 0, shown(result)
    assert f"fib(90) = {FIB_90}  [" in result.stdout
    assert "fib(1000) = 43466557686937456435... (209 digits)" in result.stdout
    assert "200 calls from 4 threads in" in result.stdout
    assert result.stdout.rstrip().endswith("all results correct"), shown(result)
    assert worker.stop() == 0, worker.output()


@pytest.mark.parametrize("script", ["client.py", "kombu_client.py"])
def test_plain_client_calls_the_worker_without_importing_taskrpc(
    start_worker_process: StartWorker, broker_url: str, unique_queue: str, script: str
) -> None:
    cwd = EXAMPLES / "plain_pika"
    worker = start_worker_process("taskrpc.fibonacci:app", cwd)
    env = example_env(broker_url, unique_queue)

    def plain(*args: str) -> subprocess.CompletedProcess[str]:
        return run("-c", WITHOUT_TASKRPC, script, *args, cwd=cwd, env=env)

    ok = plain("90")
    assert (ok.returncode, ok.stdout) == (0, f"fib(90) = {FIB_90}\n"), shown(ok)

    big = plain("--url", broker_url, "100000")  # 20,899 digits: past CPython's JSON int limit
    assert big.returncode == 0, shown(big)
    assert len(big.stdout.strip().removeprefix("fib(100000) = ")) == 20_899

    refused = plain("-1")
    assert refused.returncode == 1, shown(refused)
    assert "error: invalid_arguments: ValidationError" in refused.stderr
    assert "field n: Input should be greater than or equal to 0" in refused.stderr

    nowhere = plain("--queue", f"{unique_queue}.nobody", "5")
    assert nowhere.returncode == 4, shown(nowhere)
    assert "is a worker running?" in nowhere.stderr

    assert worker.stop() == 0, worker.output()
    # The queue outlives the worker, so the request is routed but never answered.
    unanswered = plain("--timeout", "0.5", "5")
    assert unanswered.returncode == 3, shown(unanswered)
    assert f"error: timeout: no reply from 'fib' on queue {unique_queue!r} within 0.5 s" in (
        unanswered.stderr
    )


def test_models_example_sends_and_receives_pydantic_models(
    start_worker_process: StartWorker, broker_url: str, unique_queue: str
) -> None:
    cwd = EXAMPLES / "models"
    worker = start_worker_process("tasks:app", cwd)

    result = run("client.py", cwd=cwd, env=example_env(broker_url, unique_queue))

    assert result.returncode == 0, shown(result)
    lines = result.stdout.splitlines()
    assert lines[0] == "quote for ada: Quote with 2 lines"
    assert lines[1] == "  subtotal 32.58  discount 3.26  total 29.32"
    assert lines[2].startswith("  total is a Decimal, quoted_at a datetime (")
    assert lines[3] == "by name: dict total='15.00'"
    assert lines[4] == "refused: order.items.0.quantity: Input should be greater than 0"
    assert worker.stop() == 0, worker.output()


def test_errors_example_prints_each_typed_exception(
    start_worker_process: StartWorker, broker_url: str, unique_queue: str
) -> None:
    cwd = EXAMPLES / "errors"
    worker = start_worker_process("tasks:app", cwd)

    result = run("client.py", cwd=cwd, env=example_env(broker_url, unique_queue))

    assert result.returncode == 0, shown(result)
    out = result.stdout
    lines = out.splitlines()
    assert "ok: ada has 70.00 left" in lines
    assert (
        "remote error: RemoteError [task_failed] tasks.InsufficientFunds: "
        "bob holds 5.00, cannot withdraw 50"
    ) in lines
    assert "  remote traceback ends with: tasks.InsufficientFunds: bob holds 5.00" in out
    invalid = [line for line in lines if line.startswith("invalid arguments: ")]
    assert len(invalid) == 2, out
    assert all("InvalidArguments [invalid_arguments]" in line for line in invalid)
    assert "  field amount: Input should be greater than 0" in lines
    assert "amount" in invalid[1], out  # the misspelt keyword's message names the field
    unknown = [line for line in lines if line.startswith("unknown task: ")]
    assert unknown and "UnknownTask [unknown_task]" in unknown[0], out
    assert "'bank.close_account'" in unknown[0]
    timeouts = [line for line in lines if line.startswith("timeout: ")]
    assert len(timeouts) == 2, out
    assert timeouts[0].startswith("timeout: TimeoutError (a builtin TimeoutError too: True): ")
    assert "  same call, asked again: report ready after 0.5 s" in lines
    # SIGTERM lands while the call that missed its deadline may still run: it is finished first.
    assert worker.stop() == 0, worker.output()
