"""Sphinx configuration for the taskrpc documentation.

Build (warnings are errors, nitpicky)::

    sphinx-build -W --keep-going -n -b html docs docs/_build/html
    sphinx-build -W --keep-going -n -b doctest docs docs/_build/doctest

Intersphinx links to Python, kombu and pydantic need their inventories from the
network, so they are off unless ``TASKRPC_DOCS_INTERSPHINX=1``; offline builds then
pass ``-W`` without them.
"""

from __future__ import annotations

import builtins
import os
import sys
from pathlib import Path
from typing import ParamSpec, TypeVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the taskrpc checkout next to docs/

import taskrpc  # noqa: E402

# -- Project ------------------------------------------------------------------------------

project = "taskrpc"
author = "the taskrpc authors"
copyright = "the taskrpc authors"  # noqa: A001 - Sphinx's name
release = taskrpc.__version__
version = ".".join(release.split(".")[:2])

# -- Extensions ---------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_autodoc_typehints",  # must come after napoleon
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "sphinx_click",
    "taskrpc_docs",  # docs/_ext: tables generated from the code
]

exclude_patterns = ["_build"]
nitpicky = True
# typehints_formatter below is a function, which Sphinx cannot pickle with the environment.
suppress_warnings = ["config.cache"]
default_role = "code"

# -- Autodoc, napoleon, type hints ----------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}
autodoc_preserve_defaults = True  # show ``NO_RETRY``, not the policy's long repr
typehints_fully_qualified = False
always_use_bars_union = True
# Return types go in the signature (``-> int``), not in a "Return type" field:
# sphinx_autodoc_typehints 3.6 misplaces that field (after an "Example" rubric) when a
# docstring has both Parameters and a multi-line Raises section.
typehints_use_signature_return = True
typehints_document_rtype = False


def typehints_formatter(annotation: object, config: object = None) -> str | None:
    """Show type variables and ParamSpecs by name (``R``), not as ``TypeVar("R")``.

    Called with ``config`` for descriptions (return reStructuredText), without it for
    signatures (where ``None`` keeps Sphinx's own rendering).
    """
    if config is not None and isinstance(annotation, (TypeVar, ParamSpec)):
        return f"``{annotation.__name__}``"
    return None  # the default formatting


napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields: no clash with properties of the same name
napoleon_use_rtype = False
napoleon_custom_sections = [("Fixtures", "params_style")]

# sphinx-click 6.2 imports ``mock`` from ``sphinx.ext.autodoc``, which on Sphinx 9 (once
# sphinx_autodoc_typehints has loaded) is the ``mock`` *module*: every ``.. click::`` then
# fails with "'module' object is not callable" (click-contrib/sphinx-click#159).
import sphinx_click.ext  # noqa: E402
from sphinx.ext.autodoc.mock import mock as _autodoc_mock  # noqa: E402

if not callable(sphinx_click.ext.mock):
    sphinx_click.ext.mock = _autodoc_mock

# -- Intersphinx (online only) --------------------------------------------------------------

INTERSPHINX = os.environ.get("TASKRPC_DOCS_INTERSPHINX", "") == "1"
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
if INTERSPHINX:
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "kombu": ("https://docs.celeryq.dev/projects/kombu/en/stable/", None),
        "pydantic": ("https://docs.pydantic.dev/latest/", None),
    }
intersphinx_timeout = 10

# Names outside taskrpc that no local inventory can resolve. Offline, every reference to
# Python, kombu or pydantic lands here; online, intersphinx resolves what it knows first.
_EXTERNAL_MODULES = (
    *sorted(sys.stdlib_module_names),
    "typing",
    "collections",
    "types",
    "threading",
    "concurrent",
    "weakref",
    "dataclasses",
    "kombu",
    "amqp",
    "pydantic",
    "pydantic_core",
    "click",
    "pytest",
    "_pytest",
    "prometheus_client",
    "opentelemetry",
    "starlette",
    "uvicorn",
)
nitpick_ignore_regex = [
    ("py:.*", rf"({'|'.join(_EXTERNAL_MODULES)})(\..+)?"),
    ("py:.*", "|".join(name for name in dir(builtins) if not name.startswith("_"))),
    ("py:.*", r"None|Ellipsis|NoneType"),
    # Type variables and ParamSpec components in generic signatures.
    ("py:.*", r"(taskrpc\.[\w.]+\.)?(P|R|F|T|TaskT|T_contra)(\.args|\.kwargs)?"),
]
if not INTERSPHINX:
    nitpick_ignore_regex.append(("py:.*", r"(typing|collections\.abc)\.\w+"))

# -- Doctest ------------------------------------------------------------------------------

doctest_global_setup = """
import logging

import taskrpc

# The examples' workers refuse bad requests on purpose; keep their warnings out of the output.
logging.getLogger("taskrpc").setLevel(logging.ERROR)
"""

# -- HTML ---------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"taskrpc {release}"
html_static_path: list[str] = []
