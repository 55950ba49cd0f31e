"""The shape issue 9 asks of the command line: click only, no SQL, small modules and functions."""

from __future__ import annotations

import ast
from pathlib import Path

import orchestration.cli

CLI = Path(orchestration.cli.__file__).parent


def modules():
    return sorted(CLI.glob("*.py"))


def test_cli_modules_hold_no_sql():
    for path in modules():
        text = path.read_text()
        assert ".cursor(" not in text and "cur.execute" not in text, f"{path.name} runs SQL: move it to a service"


def test_modules_and_functions_stay_small():
    for path in modules():
        text = path.read_text()
        assert len(text.splitlines()) <= 400, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno - node.lineno + 1 <= 60, f"{path.name}:{node.name} is over 60 lines"


def test_main_only_assembles():
    tree = ast.parse((CLI / "main.py").read_text())
    commands = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name != "main"]
    assert commands == [], [c.name for c in commands]
