"""The shape of the package, checked from its source with `ast` (nothing is imported or run).

What counts as a dependency: every `import` and `from ... import` anywhere in a module: at
module level, inside functions, under `if TYPE_CHECKING:`. A lazy import written to dodge a
circle is still a circle in the design, so it counts. Importing `a.b.c` also runs `a/__init__`
and `a/b/__init__`, so those count too (except the importer's own packages, already running).

Known exceptions sit in the allow-lists below, each with the branch that removes it: when that
branch is merged, its entries go and the test must still pass.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "orchestration"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
LONG_REASON = "# long:"

# Files over MAX_FILE_LINES, owned by branches that are splitting them now.
TOO_LONG_FILES: set[str] = set()
# Functions over MAX_FUNCTION_LINES without a `# long:` reason, in files other branches own.
TOO_LONG_FUNCTIONS: set[str] = set()
# Modules besides runs/records.py (and migrations) with SQL on control.report_runs.
REPORT_RUNS_SQL: set[str] = set()
# Where a transaction may end outside services/ (see orchestration/services/__init__.py). Beside
# the adapters and db/ (not domain code), the only modules that commit, each for a reason:
COMMITTING_PACKAGES = ("orchestration/services/", "orchestration/db/", "orchestration/cli/", "orchestration/api/",
                       "orchestration/defs/", "orchestration/dev/")
COMMITS_ON_ITS_OWN = {
    # a refusal's audit row must survive the rollback of the refused work
    "orchestration/access/audit.py",
    # the worker pool's queue: a launch is claimed (committed) before its run starts, so no other
    # worker takes it, and a heartbeat is seen by other processes at once
    "orchestration/runs/launches.py",
    # a run's progress must be visible to other processes (CLI, cancel, reaper) while it runs
    "orchestration/runs/records.py",
    # the run engine's steps, run by a worker for minutes: each step's tables and rows are visible
    # to the next step's reader connection and to other processes as soon as the step ends
    "orchestration/runs/snapshot.py", "orchestration/runs/publish.py",
    # the outbox: a row is claimed (committed) before its channel is called, so no other worker
    # sends it, and its outcome is committed as soon as the channel answered
    "orchestration/delivery/records.py",
    # a security event is kept even when the request that raised it is refused
    "orchestration/runs/admission.py",
    # the tenant's hashing key is made once, on first use, by whichever render needs it first
    "orchestration/exports/redaction.py",
}
# Domain modules that still commit and whose transactions move up into services/: the list
# only shrinks (test_the_allow_lists_hold_only_what_still_fails).
TRANSACTIONS_NOT_YET_IN_SERVICES: set[str] = set()
# Modules that must not depend, even indirectly, on these: authorization never waits on a renderer.
FORBIDDEN_DEPENDENCIES = {
    "orchestration.access": ("orchestration.exports", "orchestration.catalog"),
}

SQL = re.compile(
    r"\b(select\b[\s\S]+\bfrom|insert\s+into|update\s+[\w.]+\s+set|delete\s+from|create\s+(table|index|schema|view)"
    r"|alter\s+table|truncate\s+[\w.]+)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Module:
    name: str  # orchestration.runs.publish; a package is named by its folder
    path: Path
    is_package: bool

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @property
    def package(self) -> str:
        """The top-level domain package it belongs to (orchestration.runs), or itself at the top."""
        return ".".join(self.name.split(".")[:2])


@cache
def modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = Module(".".join(parts), path, is_package)
    return found


@cache
def tree(name: str) -> ast.Module:
    return ast.parse(modules()[name].path.read_text(encoding="utf-8"))


def _known(dotted: str) -> str | None:
    """The most specific module of ours that `dotted` names (a.b.attr -> a.b)."""
    mods = modules()
    while dotted and dotted not in mods:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _imported(module: Module, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:  # relative: resolved against the importer's package
        base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    # `from pkg import sub` names the submodule; `from mod import attr` names the module.
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in modules() else source for a in node.names]


@cache
def graph() -> dict[str, dict[str, int]]:
    """module -> {module it depends on: line of the first import}."""
    edges: dict[str, dict[str, int]] = {}
    for name, module in modules().items():
        out: dict[str, int] = {}
        for node in ast.walk(tree(name)):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for dotted in _imported(module, node):
                target = _known(dotted) if dotted.startswith("orchestration.") else None
                if not target or target == name:
                    continue
                out.setdefault(target, node.lineno)
                parts = target.split(".")
                for i in range(2, len(parts)):  # the packages whose __init__ importing it runs
                    parent = ".".join(parts[:i])
                    if parent in modules() and not name.startswith(parent + ".") and parent != name:
                        out.setdefault(parent, node.lineno)
        edges[name] = out
    return edges


def find_cycle(edges: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as a path [a, b, ..., a], or None (depth-first search, colors)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def describe(cycle: list[str], edges: dict[str, dict[str, int]]) -> str:
    steps = [f"{a} (line {edges[a][b]}) -> {b}" for a, b in zip(cycle, cycle[1:], strict=False)]
    return "import cycle:\n  " + "\n  ".join(steps)


def reachable(start: str, edges: dict[str, dict[str, int]]) -> dict[str, str]:
    """Every module `start` depends on, directly or not -> the module that imports it."""
    seen: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in edges.get(node, ()):
            if nxt not in seen and nxt != start:
                seen[nxt] = node
                queue.append(nxt)
    return seen


def _docstring_nodes(root: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(root):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


# ---------------------------------------------------------------- the tests


def test_the_checker_finds_a_cycle_and_names_its_path():
    """The cycle finder on a made-up graph, so a green run below means 'no cycle', not 'no check'."""
    edges = {"a": {"b": 3}, "b": {"c": 7}, "c": {"a": 1}, "d": {"a": 2}}
    cycle = find_cycle(edges)
    assert cycle == ["a", "b", "c", "a"]
    assert describe(cycle, edges).splitlines()[1:] == ["  a (line 3) -> b", "  b (line 7) -> c", "  c (line 1) -> a"]
    assert find_cycle({"a": {"b": 1}, "b": {}}) is None


def test_every_module_is_parsed_and_imports_are_seen():
    edges = graph()
    assert len(edges) > 50
    # a function-level import counts (cli/setup.py imports the seed lazily inside `seed`)
    assert "orchestration.dev.seed" in edges["orchestration.cli.setup"]
    # importing a submodule runs its package's __init__
    assert "orchestration.exports" in edges["orchestration.runs.publish"]


def test_no_import_cycles():
    edges = graph()
    cycle = find_cycle(edges)
    assert cycle is None, describe(cycle, edges)


@pytest.mark.parametrize("package", sorted(FORBIDDEN_DEPENDENCIES))
def test_access_depends_on_nothing_that_renders(package):
    edges = graph()
    problems = []
    for name in [m for m in modules() if m == package or m.startswith(package + ".")]:
        via = reachable(name, edges)
        for target, importer in sorted(via.items()):
            if target.startswith(FORBIDDEN_DEPENDENCIES[package]):
                problems.append(f"{name} depends on {target} (imported by {importer})")
    assert not problems, "\n".join(problems)


def test_no_file_over_the_line_limit():
    too_long = {}
    for module in modules().values():
        lines = len(module.path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_FILE_LINES and module.rel not in TOO_LONG_FILES:
            too_long[module.rel] = lines
    assert not too_long, f"files over {MAX_FILE_LINES} lines: {too_long}"


def _long_functions() -> dict[str, int]:
    found = {}
    for name, module in modules().items():
        lines = module.path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(tree(name)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = node.end_lineno - node.lineno + 1
            if length <= MAX_FUNCTION_LINES:
                continue
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            before = lines[first - 2] if first >= 2 else ""
            if LONG_REASON in before or LONG_REASON in (ast.get_docstring(node) or ""):
                continue
            found[f"{module.rel}:{node.name}"] = length
    return found


def test_no_function_over_the_limit_without_a_reason():
    too_long = {k: v for k, v in _long_functions().items() if k not in TOO_LONG_FUNCTIONS}
    assert not too_long, (f"functions over {MAX_FUNCTION_LINES} lines; split them into named steps, "
                          f"or put '{LONG_REASON} <why>' on the line before the def: {too_long}")


def test_the_allow_lists_hold_only_what_still_fails():
    """An entry that no longer fails is removed, so the lists only ever shrink to empty."""
    long_files = {m.rel for m in modules().values()
                  if len(m.path.read_text(encoding="utf-8").splitlines()) > MAX_FILE_LINES}
    assert not TOO_LONG_FILES - long_files, f"no longer too long, drop them: {TOO_LONG_FILES - long_files}"
    long_functions = set(_long_functions())
    assert not TOO_LONG_FUNCTIONS - long_functions, f"fixed, drop them: {TOO_LONG_FUNCTIONS - long_functions}"
    with_sql = {m.rel for m in modules().values() if "control.report_runs" in m.path.read_text(encoding="utf-8")}
    assert not REPORT_RUNS_SQL - with_sql, f"fixed, drop them: {REPORT_RUNS_SQL - with_sql}"
    committing = set(_domain_modules_that_commit())
    assert not TRANSACTIONS_NOT_YET_IN_SERVICES - committing, \
        f"moved to services, drop them: {TRANSACTIONS_NOT_YET_IN_SERVICES - committing}"


def _commits_in(root: ast.AST) -> list[int]:
    """Lines of `with conn:` (or `with conn, conn.cursor() ...`) and of `x.commit()`."""
    lines = []
    for node in ast.walk(root):
        if isinstance(node, (ast.With, ast.AsyncWith)):
            lines += [node.lineno for item in node.items
                      if isinstance(item.context_expr, ast.Name) and "conn" in item.context_expr.id]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit":
            lines.append(node.lineno)
    return sorted(lines)


def _commits(name: str) -> list[int]:
    return _commits_in(tree(name))


def _domain_modules_that_commit() -> dict[str, list[int]]:
    return {m.rel: lines for name, m in modules().items()
            if not m.rel.startswith(COMMITTING_PACKAGES) and m.rel not in COMMITS_ON_ITS_OWN
            and (lines := _commits(name))}


def test_the_commit_finder_sees_both_forms():
    source = ("def f(conn):\n    with conn, conn.cursor() as cur:\n        pass\n    conn.commit()\n"
              "def g(conn):\n    with conn.cursor() as cur:\n        pass\n    with conn:\n        pass\n")
    assert _commits_in(ast.parse(source)) == [2, 4, 8]


def test_domain_code_leaves_the_transaction_to_its_service():
    """A service function owns the transaction; domain code runs in its caller's (see the rule in
    orchestration/services/__init__.py). The exceptions are COMMITS_ON_ITS_OWN, each with why."""
    found = {rel: lines for rel, lines in _domain_modules_that_commit().items()
             if rel not in TRANSACTIONS_NOT_YET_IN_SERVICES}
    assert not found, ("domain modules that end a transaction themselves (`with conn:` or `.commit()`); "
                       f"take a connection and let the service in orchestration/services/ commit: {found}")


def test_every_module_said_to_commit_on_its_own_still_does():
    """An exception that no longer commits is dropped from COMMITS_ON_ITS_OWN."""
    missing = sorted(rel for rel in COMMITS_ON_ITS_OWN
                     if not _commits(next(n for n, m in modules().items() if m.rel == rel)))
    assert not missing, f"these no longer commit: drop them from COMMITS_ON_ITS_OWN: {missing}"


def test_run_records_are_read_and_written_only_by_runs_records():
    offenders = []
    for module in modules().values():
        if module.rel == "orchestration/runs/records.py" or "/db/migrations/" in module.rel:
            continue
        if "control.report_runs" in module.path.read_text(encoding="utf-8") and module.rel not in REPORT_RUNS_SQL:
            offenders.append(module.rel)
    assert not offenders, f"SQL on control.report_runs outside orchestration/runs/records.py: {offenders}"


def test_dagster_definitions_hold_no_sql():
    found = []
    for name, module in modules().items():
        if not name.startswith("orchestration.defs"):
            continue
        docstrings = _docstring_nodes(tree(name))
        for node in ast.walk(tree(name)):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and SQL.search(node.value)):
                found.append(f"{module.rel}:{node.lineno}: {node.value.strip()[:60]!r}")
    assert not found, "SQL belongs in the domain packages, not in defs/:\n" + "\n".join(found)


def test_no_private_names_used_from_another_module():
    """`from x import _helper` (or `x._helper`): a leading underscore means private to its module,
    so not even a sibling in the same package reaches in (defs/reports/checks.py once imported
    assets._failure); what two modules share gets a public name."""
    mods = modules()
    found = []
    for name, module in mods.items():
        aliases: dict[str, str] = {}  # local name -> module of ours it is bound to
        for node in ast.walk(tree(name)):
            if isinstance(node, ast.ImportFrom):
                for alias, dotted in zip(node.names, _imported(module, node), strict=True):
                    if not dotted.startswith("orchestration."):
                        continue
                    if dotted.endswith("." + alias.name) and dotted in mods:  # a module: remember its local name
                        aliases[alias.asname or alias.name] = dotted
                    elif alias.name.startswith("_"):
                        found.append(f"{module.rel}:{node.lineno}: from {dotted} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name in mods:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree(name)):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                found.append(f"{module.rel}:{node.lineno}: {aliases[node.value.id]}.{node.attr}")
    assert not found, "private names used from another module:\n" + "\n".join(sorted(set(found)))
