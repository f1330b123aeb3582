"""The package layout keeps the promises ARCHITECTURE.md makes (issue #11).

Checked statically, so a change that breaks them fails here instead of in review: no module
over 500 lines, no import circle (function-level imports count, since they only postpone the
circle), and nothing below the command line imports it.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fedlab", "clients", "server", "audits")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    if not level:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _import_graph() -> dict[str, set[str]]:
    """Edges importer → imported module, over every import statement in the file."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node.module, node.level, name, is_package)
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    targets.add(candidate if candidate in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_cycle_finder_finds_a_planted_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_module_is_over_the_line_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in _modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_import_circles() -> None:
    assert _cycles(_import_graph()) == []


def test_only_the_command_line_imports_the_command_line() -> None:
    graph = _import_graph()
    offenders = {
        module: sorted(t for t in targets if t == "fedlab.cli" or t.startswith("fedlab.cli."))
        for module, targets in graph.items()
        if not (module == "fedlab.cli" or module.startswith("fedlab.cli."))
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_license_is_an_spdx_expression() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
    for name in project["license-files"]:
        assert (ROOT / name).is_file(), name


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_says_what_it_holds(package: str) -> None:
    missing = [
        str(path.relative_to(ROOT))
        for name, path in _modules().items()
        if name.split(".")[0] == package
        and path.stat().st_size > 0
        and ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None
    ]
    assert missing == []


# Layers (ARCHITECTURE.md): entry points above the Flower apps above the core library.
ENTRY_POINTS = (
    "fedlab.cli",
    "fedlab.runs.simulate",
    "fedlab.runs.sweep",
    "fedlab.runs.study",
    "fedlab.deploy",
    "fedlab.report",
)
AUDITS_MAY_USE = {"fedlab", "fedlab.core.errors", "fedlab.core.rundir"}


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_flower_apps_and_core_do_not_import_entry_points() -> None:
    graph = _import_graph()
    offenders = {
        module: sorted(t for t in targets if _under(t, ENTRY_POINTS))
        for module, targets in graph.items()
        if not _under(module, ENTRY_POINTS)
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_audits_use_only_errors_and_run_directories_from_fedlab() -> None:
    graph = _import_graph()
    used = {
        module: sorted(t for t in targets if t.split(".")[0] == "fedlab" and t not in AUDITS_MAY_USE)
        for module, targets in graph.items()
        if module.split(".")[0] == "audits"
    }
    assert {m: t for m, t in used.items() if t} == {}
