"""The documentation builds with no warnings (nitpicky), and its examples pass.

The doctest build runs every ``>>>`` example in the guides and in the docstrings shown by
the reference, against a worker on the in-process ``memory://`` transport: no broker.

The shell commands of the quickstart and of README.rst run too, as written, against the
real broker: ``taskrpc demo``, the worker and the calls, with their output compared to
the one shown (timestamps, timings and ids aside).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskrpc
from taskrpc.testing.broker import wait_for_consumers

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

needs_sphinx = pytest.mark.skipif(
    importlib.util.find_spec("sphinx") is None,
    reason="Sphinx is not installed (pip install '.[docs]')",
)


def build(builder: str, out: Path) -> subprocess.CompletedProcess[str]:
    # -E: read every page afresh; -W -n: any warning, and any broken reference, fails.
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-n",
        "-E",
        "-q",
        "-b",
        builder,
        str(DOCS),
        str(out / builder),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=170)


@needs_sphinx
@pytest.mark.timeout(180)
def test_the_html_docs_build_without_warnings(tmp_path: Path) -> None:
    result = build("html", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    cli = (tmp_path / "html" / "cli.html").read_text()
    assert "--concurrency" in cli, "the sphinx-click directive rendered nothing"


@needs_sphinx
@pytest.mark.timeout(180)
def test_the_examples_in_the_docs_pass(tmp_path: Path) -> None:
    result = build("doctest", tmp_path)
    report = tmp_path / "doctest" / "output.txt"
    details = report.read_text() if report.exists() else ""
    assert result.returncode == 0, details + result.stdout + result.stderr


def test_the_reference_documents_every_public_name() -> None:
    reference = (DOCS / "reference.rst").read_text()
    documented = set(
        re.findall(r"^\.\. (?:auto\w+|data)::\s+(?:taskrpc\.)?(\w+)\s*$", reference, re.MULTILINE)
    )
    missing = sorted(set(taskrpc.__all__) - documented)
    assert not missing, f"add these to docs/reference.rst: {missing}"


# -- The shell commands of the quickstart and the README, run as written --------------------

#: Commands shown but not run here, and why; every other command shown must be run below.
NOT_RUN = {
    "python -m pip install .": "the test environment is installed already",
    "docker run -d --name rabbitmq -p 5672:5672 rabbitmq:3": "the broker_url fixture's broker",
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && taskrpc demo": (
        "installs from the network; its `taskrpc demo` is run from the quickstart"
    ),
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test,docs]' "
    "&& python -m pytest": "the test suite itself",
}

#: Shown output that varies from run to run: timestamps, timings, ids.
VARIABLE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}|\[\d+\.\d+ ms\]|[0-9a-f]{32}")


def console_blocks(path: Path) -> list[list[str]]:
    """The non-blank lines of each ``.. code-block:: console`` in ``path``, dedented."""
    blocks, lines = [], path.read_text().splitlines()
    for index, line in enumerate(lines):
        if line.strip() != ".. code-block:: console":
            continue
        block: list[str] = []
        for body in lines[index + 1 :]:
            if body.strip() and not body.startswith(" "):
                break
            block.append(body)
        indent = min(len(b) - len(b.lstrip()) for b in block if b.strip())
        blocks.append([b[indent:].rstrip() for b in block if b.strip()])
    return blocks


def quickstart_session() -> list[tuple[str, list[str]]]:
    """``(command, shown output lines)`` for every ``$`` line of the quickstart, in order."""
    session: list[tuple[str, list[str]]] = []
    for block in console_blocks(DOCS / "quickstart.rst"):
        for line in block:
            if line.startswith("$ "):
                session.append((line[2:], []))
            else:
                session[-1][1].append(line)
    return session


def readme_commands() -> list[str]:
    """Every line of the README's console blocks (they show commands, no prompt or output)."""
    return [line for block in console_blocks(ROOT / "README.rst") for line in block]


def quickstart_tasks_py() -> str:
    """The ``tasks.py`` the quickstart asks to save: the python block after "Save this"."""
    text = (DOCS / "quickstart.rst").read_text()
    after = text[text.index("Save this as ``tasks.py``") :]
    body = after[after.index(".. code-block:: python") :].split("\n", 2)[2]
    code = []
    for line in body.splitlines():
        if line.strip() and not line.startswith(" "):
            break
        code.append(line[3:])
    return "\n".join(code).strip() + "\n"


def pattern_of(shown: str) -> re.Pattern[str]:
    """A regex matching ``shown``, with its variable parts (``VARIABLE``) left open."""
    parts, end = [], 0
    for match in VARIABLE.finditer(shown):
        parts += [re.escape(shown[end : match.start()]), f"(?:{VARIABLE.pattern})"]
        end = match.end()
    return re.compile("".join([*parts, re.escape(shown[end:])]))


def assert_shown(shown: list[str], result: subprocess.CompletedProcess[str]) -> None:
    """Each shown line appears in the output (stdout lines in the order shown)."""
    out, err = result.stdout.splitlines(), result.stderr.splitlines()
    found_in_stdout = []
    for line in shown:
        pattern = pattern_of(line)
        hits = [i for i, actual in enumerate(out) if pattern.fullmatch(actual)]
        if hits:
            found_in_stdout.append(hits[0])
            continue
        assert any(pattern.fullmatch(actual) for actual in err), (
            f"shown {line!r}, but the command printed:\n{result.stdout}{result.stderr}"
        )
    assert found_in_stdout == sorted(found_in_stdout), result.stdout


@pytest.fixture
def shell_env(broker_url: str, unique_queue: str) -> dict[str, str]:
    """The reader's shell: this interpreter's scripts first on PATH, the test's broker and
    queue in ``TASKRPC_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRPC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(TASKRPC_BROKER_URL=broker_url, TASKRPC_DEFAULT_QUEUE=unique_queue)
    return env


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[str]]]:
    """Commands left running (the workers); stopped with SIGTERM after the test."""
    running: list[subprocess.Popen[str]] = []
    yield running
    for process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def start_worker(
    command: str, cwd: Path, env: dict[str, str], broker_url: str, queue: str, log: Path
) -> subprocess.Popen[str]:
    with log.open("w") as out:
        process = subprocess.Popen(  # exec: the signals go to the worker, not to a shell
            f"exec {command}",
            shell=True,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_for_consumers(broker_url, queue, timeout=20)
    except TimeoutError:
        pytest.fail(f"{command!r} did not start consuming {queue!r}:\n{log.read_text()}")
    return process


def test_every_command_shown_is_run_or_known_not_to_be() -> None:
    run_here = {
        "taskrpc demo",
        "taskrpc worker tasks:app",
        'python -c "from tasks import add; print(add.delay(2, 3).get(timeout=10))"',
        "taskrpc call tasks:app add 2 3",
        "taskrpc call tasks:app add 2 three",
        "echo $?",
        "taskrpc worker taskrpc.fibonacci:app --pool processes",
        "taskrpc call taskrpc.fibonacci:app fib 90",
    }
    shown = {command for command, _ in quickstart_session()} | set(readme_commands())
    assert shown == run_here | set(NOT_RUN), "update the tests of the quickstart and README"


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_the_quickstart_commands_work_as_shown(
    tmp_path: Path,
    shell_env: dict[str, str],
    broker_url: str,
    unique_queue: str,
    background: list[subprocess.Popen[str]],
) -> None:
    (tmp_path / "tasks.py").write_text(quickstart_tasks_py())
    last: subprocess.CompletedProcess[str] | None = None
    for command, shown in quickstart_session():
        if command in NOT_RUN:
            continue
        if command.startswith("taskrpc worker "):
            log = tmp_path / "worker.log"
            background.append(
                start_worker(command, tmp_path, shell_env, broker_url, unique_queue, log)
            )
            ready = log.read_text().replace(unique_queue, "taskrpc.default")
            ready = re.sub(r"amqp://[^']*", "amqp://guest:**@localhost:5672//", ready)
            assert_shown(shown, subprocess.CompletedProcess(command, 0, "", ready))
            continue
        if command == "echo $?":  # the status of the command before
            assert last is not None
            assert shown == [str(last.returncode)], f"{last.stdout}{last.stderr}"
            continue
        last = shell(command, tmp_path, shell_env)
        assert_shown(shown, last)
        if not any(line.startswith("error:") for line in shown):
            assert last.returncode == 0, f"{command}: {last.stdout}{last.stderr}"
    for process in background:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0  # Ctrl-C and SIGTERM stop it cleanly


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_the_readme_worker_and_call_work(
    tmp_path: Path,
    shell_env: dict[str, str],
    broker_url: str,
    unique_queue: str,
    background: list[subprocess.Popen[str]],
) -> None:
    commands = [command for command in readme_commands() if command not in NOT_RUN]
    worker, call = commands
    background.append(
        start_worker(worker, tmp_path, shell_env, broker_url, unique_queue, tmp_path / "w.log")
    )
    result = shell(call, tmp_path, shell_env)
    assert (result.returncode, result.stdout) == (0, "2880067194370816120\n"), result.stderr
