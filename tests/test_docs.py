"""The documentation builds with no warnings (nitpicky), and its examples pass.

The doctest build runs every ``>>>`` example in the guides and in the docstrings shown by
the reference, against a worker on the in-process ``memory://`` transport: no broker.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="Sphinx is not installed (pip install '.[docs]')")

import taskrpc  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"


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


@pytest.mark.timeout(180)
def test_the_html_docs_build_without_warnings(tmp_path: Path) -> None:
    result = build("html", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    cli = (tmp_path / "html" / "cli.html").read_text()
    assert "--concurrency" in cli, "the sphinx-click directive rendered nothing"


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
