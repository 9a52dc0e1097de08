"""One direction of flow: floe_dagster's imports point down its layers, with no cycle.

`lint-imports` (pyproject.toml, [tool.importlinter]) checks the layers contract in `make lint`;
these tests check it too, and what the contract does not: no import cycle at all inside
floe_dagster, counting imports inside functions (only ``if TYPE_CHECKING:`` imports are left
out), and every import kept inside a function says why in a ``# lazy`` comment above it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import floe_dagster

PACKAGE = Path(floe_dagster.__file__).parent


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def internal_imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, ast.AST, bool]]:
    """(imported floe_dagster module, node, inside a function) for every import outside TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        in_function, scope = False, node
        while scope in parents:
            scope = parents[scope]
            if isinstance(scope, ast.If) and "TYPE_CHECKING" in ast.unparse(scope.test):
                break
            in_function = in_function or isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef)
        else:
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    yield target, node, in_function


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {t for t, _, _ in internal_imports(name, path, known)} for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
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


def test_no_import_cycle_inside_floe_dagster_counting_imports_inside_functions() -> None:
    graph = import_graph()
    assert sum(len(targets) for targets in graph.values()) > 200, "the graph must see the package's imports"
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_import_inside_a_function_says_why_it_is_lazy() -> None:
    known = modules()
    unexplained = []
    for name, path in known.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for _target, node, in_function in internal_imports(name, path, known):
            if not in_function:
                continue
            above = node.lineno - 2
            while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
                above -= 1  # a group of imports shares one comment
            if above < 0 or "lazy" not in lines[above]:
                unexplained.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert unexplained == []


def test_the_layers_contract_is_kept() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout
