"""README.rst renders cleanly on PyPI: ``python -m readme_renderer`` accepts it.

readme_renderer (in the ``docs`` extra) is what PyPI and ``twine check`` use; it fails on
any reStructuredText warning or error, such as a Sphinx-only role like ``:doc:``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from taskrpc.testing.plugin import in_ci

README = Path(__file__).resolve().parent.parent / "README.rst"


def test_the_readme_renders_cleanly(tmp_path: Path) -> None:
    if importlib.util.find_spec("readme_renderer") is None:
        message = "readme_renderer is not installed (pip install '.[docs]')"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    html = tmp_path / "README.html"

    result = subprocess.run(
        [sys.executable, "-m", "readme_renderer", str(README), "-o", str(html)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "taskrpc demo" in html.read_text()  # rendered, not empty
