"""`--help` at every level: every group and command has a help line, shown whole (not cut off)."""

from __future__ import annotations

import click

from orchestration.cli.base import first_sentence
from orchestration.cli.main import main
from tests.helpers.cli import invoke


def groups(group: click.Group, path: tuple[str, ...] = ()):
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from groups(command, (*path, name))


def test_every_command_has_a_whole_help_line():
    checked = 0
    for path, group in groups(main):
        result = invoke(*path, "--help")
        assert result.exit_code == 0, result.output
        shown = "".join(result.stdout.split())  # click wraps long lines, at spaces or after a hyphen
        for name, command in group.commands.items():
            if command.hidden:
                continue
            line = first_sentence(command.help or "")
            assert line, f"{' '.join((*path, name))} has no help"
            assert "".join(line.split()) in shown, f"{' '.join((*path, name))}: {line!r} is cut off in\n{result.stdout}"
            checked += 1
    assert checked >= 40


def test_every_option_has_help():
    missing = []
    for path, group in groups(main):
        for name, command in group.commands.items():
            for param in command.params:
                if isinstance(param, click.Option) and not param.help and param.name not in ("help", "version"):
                    missing.append(f"{' '.join((*path, name))} {param.opts[0]}")
    assert not missing, missing


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"nexus-reports, version {version('nexus-reports')}"
