"""The CLI as a process: the installed `nexus-reports` script and `python -m orchestration.cli`
behave the same (on the old package, `python -m` ran `main()` from a module that had registered
only some command groups when it ran)."""

from __future__ import annotations

import sys

from tests.helpers.cli import run

MODULE = [sys.executable, "-m", "orchestration.cli"]


def test_the_script_and_python_dash_m_behave_the_same(built):
    for args in (["--version"], ["--help"], ["audit", "tail", "-n", "-5"], ["templates", "list"],
                 ["runs", "show", "no-such-run"], ["delivery", "--help"]):
        script, module = run(*args), run(*args, script=MODULE)
        assert (script.returncode, script.stdout, script.stderr) == (module.returncode, module.stdout, module.stderr), args
        assert "Traceback" not in script.stderr
    assert run("audit", "tail", "-n", "-5").returncode == 2
    assert run("runs", "show", "no-such-run").returncode == 1


def test_commands_that_render_nothing_do_not_import_the_renderers():
    """Loading templates needs the format names only: WeasyPrint, openpyxl and pypdf (about two
    seconds of a cold process) are imported by the first file written or checked, not at start."""
    import subprocess

    heavy = ("weasyprint", "openpyxl", "pypdf", "jsonschema", "dagster", "great_expectations")
    code = ("import sys, orchestration.cli.main, orchestration.catalog.templates as t; t.load_all(); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_a_worker_takes_its_imports_out_of_the_collectors_walks_once():
    """In a process of its own: a freeze is for the process's whole life."""
    import subprocess

    code = ("import gc; from orchestration.runs import worker; junk = [[] for _ in range(1000)]; "
            "worker.settle_imports(); frozen = gc.get_freeze_count(); worker.settle_imports(); "
            "print(frozen > 1000, gc.get_freeze_count() == frozen)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["True", "True"], proc.stdout + proc.stderr
