"""The command line's own words: plain help text and exact messages for a wrong APP."""

import pytest
from click.testing import CliRunner

from taskrpc.cli import cli


def _commands():
    return sorted(cli.commands)


@pytest.mark.parametrize("command", [None, *_commands()])
def test_help_text_has_no_markup(command):
    result = CliRunner().invoke(cli, [command, "--help"] if command else ["--help"])
    assert result.exit_code == 0, result.output
    for markup in ("``", ":class:", ":meth:", ":func:", ":doc:"):
        assert markup not in result.output


def test_a_missing_app_attribute_is_named_and_the_modules_apps_are_listed():
    result = CliRunner().invoke(cli, ["worker", "taskrpc.fibonacci:ap"])
    assert result.exit_code == 2
    assert "module 'taskrpc.fibonacci' has no attribute 'ap'; its apps: app" in result.output


def test_an_attribute_that_is_not_an_app_says_what_it_is():
    result = CliRunner().invoke(cli, ["worker", "taskrpc.fibonacci:fib"])
    assert result.exit_code == 2
    assert "taskrpc.fibonacci:fib is a FunctionTask, not a taskrpc.App" in result.output
