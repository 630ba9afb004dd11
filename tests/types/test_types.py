"""The typed task API, checked by mypy --strict: accepted calls infer the declared types,
and every call marked ``# rejected`` is an error (and nothing else is)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent

pytest.importorskip("mypy", reason="mypy is in the test extra")


def _mypy(*files: Path) -> list[str]:
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "setup.cfg")]
    result = subprocess.run(
        [*command, "--no-error-summary", "--show-error-codes", *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stdout.splitlines() if ": error:" in line]


@pytest.mark.timeout(300)
def test_mypy_accepts_typed_calls_and_rejects_each_wrong_one() -> None:
    accepted, rejected = HERE / "typed_calls.py", HERE / "rejected_calls.py"
    errors = _mypy(accepted, rejected)
    assert not [e for e in errors if "typed_calls.py" in e], errors
    lines = rejected.read_text().splitlines()
    expected = {n for n, line in enumerate(lines, 1) if line.rstrip().endswith("# rejected")}
    found = {int(m.group(1)) for e in errors if (m := re.search(r"rejected_calls\.py:(\d+):", e))}
    assert len(expected) >= 15
    assert sorted(expected - found) == [], "calls mypy accepted but must reject"
    assert sorted(found - expected) == [], "errors on lines not marked # rejected"
