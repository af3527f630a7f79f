"""The dependency graph: no import loops, and library modules import the project at the top.

(The layers themselves are checked by `lint-imports` with the contract in pyproject.toml.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

import scoreaware

PACKAGE = Path(scoreaware.__file__).parent


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of size > 1: the import loops."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_finder_sees_a_planted_loop():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_loops():
    graph = grimp.build_graph("scoreaware")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert strongly_connected(edges) == []


def test_library_modules_import_the_project_at_the_top():
    # the CLI keeps its imports inside commands (so --help stays fast); test helpers are free
    inner = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] in ("cli", "testing"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner += [f"{path.relative_to(PACKAGE)}:{sub.lineno}" for sub in ast.walk(node)
                          if isinstance(sub, ast.ImportFrom) and (sub.module or "").startswith("scoreaware")]
    assert inner == []


def test_every_module_imports_in_the_core_environment():
    from scoreaware.testing.imports import unimportable_modules

    assert unimportable_modules() == []


@pytest.mark.parametrize("module, planted, broken, contract", [
    ("curate/stages/filter.py", "import scoreaware.testing.dummies  # noqa\n", "scoreaware.curate.stages.filter",
     "test helpers"),
    ("testing/dummies.py", "import scoreaware.curate.audio  # noqa\n", "scoreaware.testing.dummies", "test helpers"),
    ("posttrain/crpo.py", "import click  # noqa\n", "scoreaware.posttrain.crpo", "only the commands print")])
def test_the_contracts_trip_on_a_planted_import(tmp_path, module, planted, broken, contract):
    """scoreaware.testing imports pytest: a library module importing it, or it importing a stage
    (a test leaning on what it tests), breaks a contract; so does library code importing click
    (only the commands print). Shown on a copy of the installed package."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(PACKAGE, tmp_path / "src" / "scoreaware", ignore=shutil.ignore_patterns(
        "default_models", "__pycache__", "*.gz"))
    target = tmp_path / "src" / "scoreaware" / module
    target.write_text(planted + target.read_text())
    root = Path(__file__).resolve().parents[1]
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=tmp_path / "src",
                            capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path / "src"), "PATH": ""})
    assert result.returncode != 0 and broken in result.stdout and contract in result.stdout, result.stdout[-1500:]
