"""The import graph of unlearnbench/ (AST, every import statement, lazy and TYPE_CHECKING ones
included): no cycles, layers only import downwards, reports never import torch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "unlearnbench"
# Modules that run a job or glue it to Hydra: components never import them.
UPPER = {"runner", "references", "validation", "tuning", "cli", "sweep", "preflight",
         "callbacks", "privacy"}
COMPONENTS = ("methods", "metrics", "producers", "tasks")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports (inside the package and outside)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            found |= {f"{stem}.{a.name}" for a in node.names}
    return found


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        graph[name] = {m for m in _imports(path) if m in MODULES and m != name}
    return graph


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_components_never_import_the_runner(name: str) -> None:
    parts = name.split(".")
    if len(parts) < 2 or parts[1] not in COMPONENTS:
        return
    upper = {m for m in _graph()[name] if m.count(".") and m.split(".")[1] in UPPER}
    assert not upper, f"{name} imports {sorted(upper)}"


def _reaches_torch(name: str, seen: set[str] | None = None) -> bool:
    seen = seen if seen is not None else set()
    if name in seen:
        return False
    seen.add(name)
    if any(m == "torch" or m.startswith("torch.") for m in _imports(MODULES[name])):
        return True
    return any(_reaches_torch(m, seen) for m in _graph()[name])


@pytest.mark.parametrize("name", sorted(m for m in MODULES
                                        if m.startswith("unlearnbench.report")
                                        or m in ("unlearnbench.schema", "unlearnbench.results")))
def test_reports_and_schema_are_torch_free(name: str) -> None:
    assert not _reaches_torch(name), f"{name} imports torch (directly or through the package)"
