"""Directives that render tables straight from the code, so the docs cannot drift from it.

``.. taskrpc-settings::``
    Every field of :class:`taskrpc.Settings`: environment variable, type, default and the
    field's ``#:`` comment.
``.. taskrpc-error-codes::``
    Every wire error code in :data:`taskrpc.exceptions.ERROR_CODES` and its exception.
``.. taskrpc-exception-tree::``
    The exception hierarchy under :class:`taskrpc.TaskRPCError`, as a nested list.
``.. taskrpc-exit-codes::``
    The ``EXIT_*`` constants of :mod:`taskrpc.cli` and their ``#:`` comments.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective


def _attr_comments(module: str, scope: str = "") -> dict[str, str]:
    """The ``#:`` comments of ``module`` (attributes of class ``scope``, or module level)."""
    analyzer = ModuleAnalyzer.for_module(module)
    return {
        name: " ".join(line.strip() for line in lines if line.strip())
        for (owner, name), lines in analyzer.find_attr_docs().items()
        if owner == scope
    }


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _literal(value: Any) -> str:
    """A default as reStructuredText: ``true``, ``300.0``, ``"json"``, ``("json",)``."""
    if isinstance(value, bool):
        return "``true``" if value else "``false``"
    if isinstance(value, str):
        return f'``"{value}"``'
    if isinstance(value, tuple):
        return "``()``" if not value else f"``{value!r}``".replace("'", '"')
    return f"``{value!r}``"


class _TableDirective(SphinxDirective):
    """Parse generated reStructuredText lines into the document."""

    has_content = False

    def rst_lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        source = self.get_source_info()[0]
        content = StringList([line for line in self.rst_lines()], source=source)
        container = nodes.container()
        self.state.nested_parse(content, self.content_offset, container)
        return container.children


class SettingsTable(_TableDirective):
    def rst_lines(self) -> list[str]:
        from taskrpc.settings import ENV_PREFIX, Settings

        self.env.note_dependency(inspect.getfile(Settings))
        comments = _attr_comments("taskrpc.settings", "Settings")
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 20 28 8 22 40",
            "",
            "   * - Field",
            "     - Environment variable",
            "     - Type",
            "     - Default",
            "     - Meaning",
        ]
        for field in dataclasses.fields(Settings):
            kind = field.type if isinstance(field.type, str) else field.type.__name__
            lines += [
                f"   * - ``{field.name}``",
                f"     - ``{ENV_PREFIX}{field.name.upper()}``",
                f"     - ``{kind}``",
                f"     - {_literal(field.default)}",
                f"     - {comments.get(field.name, '')}",
            ]
        return lines


class ErrorCodesTable(_TableDirective):
    def rst_lines(self) -> list[str]:
        from taskrpc.exceptions import ERROR_CODES

        self.env.note_dependency(inspect.getfile(ERROR_CODES["task_failed"]))
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 20 20 60",
            "",
            "   * - ``code``",
            "     - Raised on the caller as",
            "     - Meaning",
        ]
        for code, cls in ERROR_CODES.items():
            lines += [
                f"   * - ``{code}``",
                f"     - :exc:`~taskrpc.{cls.__name__}`",
                f"     - {_first_line(cls)}",
            ]
        return lines


class ExceptionTree(_TableDirective):
    def rst_lines(self) -> list[str]:
        import taskrpc
        from taskrpc.exceptions import TaskRPCError

        self.env.note_dependency(inspect.getfile(TaskRPCError))
        lines: list[str] = []

        def walk(cls: type, depth: int) -> None:
            indent = "  " * depth
            if getattr(taskrpc, cls.__name__, None) is cls:
                label = f":exc:`~taskrpc.{cls.__name__}`"
            else:  # not public, so not in the reference: no link
                label = f"``{cls.__module__}.{cls.__qualname__}``"
            lines.append(f"{indent}- {label} — {_first_line(cls)}")
            children = sorted(cls.__subclasses__(), key=_definition_order)
            if children:
                lines.append("")
                for child in children:
                    walk(child, depth + 1)
                lines.append("")

        walk(TaskRPCError, 0)
        return lines


def _definition_order(cls: type) -> tuple[str, int]:
    try:
        return (cls.__module__, inspect.getsourcelines(cls)[1])
    except (OSError, TypeError):
        return (cls.__module__, 0)


class ExitCodesTable(_TableDirective):
    def rst_lines(self) -> list[str]:
        import taskrpc.cli as cli

        self.env.note_dependency(inspect.getfile(cli))
        comments = _attr_comments("taskrpc.cli")
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 10 25 65",
            "",
            "   * - Code",
            "     - Constant",
            "     - Meaning",
        ]
        constants = [(getattr(cli, n), n) for n in dir(cli) if n.startswith("EXIT_")]
        for value, name in sorted(constants):
            lines += [
                f"   * - ``{value}``",
                f"     - ``{name}``",
                f"     - {comments.get(name, '')}",
            ]
        return lines


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("taskrpc-settings", SettingsTable)
    app.add_directive("taskrpc-error-codes", ErrorCodesTable)
    app.add_directive("taskrpc-exception-tree", ExceptionTree)
    app.add_directive("taskrpc-exit-codes", ExitCodesTable)
    app.connect("missing-reference", _public_alias)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


def _public_alias(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``taskrpc.some.module.Name`` to ``taskrpc.Name`` when that is the public name.

    Type hints name classes by their defining module (``taskrpc.policies.retry.RetryPolicy``);
    the reference documents them where users import them from.
    """
    import taskrpc

    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if not target.startswith("taskrpc.") or target.count(".") < 2:
        return None
    name = target.rsplit(".", 1)[1]
    if name not in taskrpc.__all__:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env, node.get("refdoc", ""), app.builder, node["reftype"], f"taskrpc.{name}", node, contnode
    )
