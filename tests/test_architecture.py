"""The layout rules of docs/architecture.md, checked on the source tree.

- the import layers hold (import-linter, the contract in pyproject.toml, run through scripts/lint_imports.sh);
- no import circle anywhere in avzsl, function-level imports included (grimp's graph, strongly connected components);
- no module over 400 lines;
- a function-level import of project code says why on its line (one-line comment).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("pipeline", "extractors", "model", "data_manifests")
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for folder in SOURCE_FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_import_layers_hold() -> None:
    """`lint-imports` keeps the layers contract (a layer imports only from layers below it)."""
    if not (Path(sys.executable).parent / "lint-imports").exists():
        pytest.skip("import-linter is not installed (it comes with the test extra)")
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "lint_imports.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout, done.stdout[-2000:]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the components with more than one module, i.e. the import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle() -> None:
    """No two avzsl modules import each other, directly or through others (lazy imports count too)."""
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (test extra)")
    # grimp walks avzsl_top/, whose links to the source folders lay the package out as installed.
    graph = grimp.build_graph("avzsl", cache_dir=None)
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("avzsl")} for m in graph.modules}
    # A package's __init__ that re-exports its submodules (a face) is no circle as long as no submodule imports it.
    circles = _strongly_connected(edges)
    assert circles == [], "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_no_module_over_400_lines() -> None:
    too_long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert too_long == {}, f"split these by concern (docs/architecture.md): {too_long}"


def test_function_level_project_imports_say_why() -> None:
    """Intra-project imports belong at module top; a lazy one carries a comment on its line saying why."""
    silent = []
    for path in _modules():
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("avzsl"):
                    names = [inner.module]
                elif isinstance(inner, ast.Import):
                    names = [a.name for a in inner.names if a.name.startswith("avzsl")]
                else:
                    continue
                said = (lines[inner.lineno - 1], lines[inner.end_lineno - 1], lines[inner.lineno - 2].strip()[:1])
                if names and "#" not in "".join(said):  # on the import's lines, or a comment line just above
                    silent.append(f"{path.relative_to(ROOT)}:{inner.lineno} {names[0]}")
    assert silent == [], "function-level project imports without a reason:\n" + "\n".join(sorted(set(silent)))
