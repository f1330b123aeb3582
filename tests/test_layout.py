"""The package layout keeps the promises ARCHITECTURE.md makes.

Checked statically, so a change that breaks them fails here instead of in review: no module
over 500 lines, no import circle (function-level imports count, since they only postpone the
circle), every package in a layer and imports only going down the layers (`LAYERS`: rules per
folder, not lists of modules), and every module saying what it holds.
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


# Layers (ARCHITECTURE.md), lowest first. A module may import its own package and packages of
# LOWER layers only: packages of one layer never import each other (server and clients talk
# through `fedlab.wire`, not imports). The root `fedlab` (the lazy front door; `__version__`) is
# importable everywhere, since it imports nothing at import time.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("fedlab.core",),  # errors, run directories, seeding: the shared leaves
    ("fedlab.config", "audits"),  # settings; the audit library (uses fedlab.core only)
    ("fedlab.data", "fedlab.learn", "fedlab.metrics", "fedlab.wire", "fedlab.runtime"),
    ("fedlab.federation",),  # data + model + local anonymization for a run
    ("server", "clients"),  # the Flower apps
    ("fedlab.runs", "fedlab.deploy"),  # entry points that run the apps
    ("fedlab.report",),  # reads what the entry points wrote
    ("fedlab.cli",),  # the command line, over all of it
)


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "fedlab" and len(parts) > 1 else parts[0]


def _layer(module: str) -> int:
    package = _package(module)
    for level, packages in enumerate(LAYERS):
        if package in packages:
            return level
    raise AssertionError(f"{module}: package {package!r} is in no layer of LAYERS")


def test_every_package_has_a_layer() -> None:
    for module in _modules():
        if module != "fedlab":
            _layer(module)


def test_imports_only_go_down_the_layers() -> None:
    graph = _import_graph()
    upward = {
        module: sorted(
            t
            for t in targets
            if t != "fedlab"
            and _package(t) != _package(module)
            and _layer(t) >= _layer(module)
        )
        for module, targets in graph.items()
        if module != "fedlab"
    }
    assert {m: t for m, t in upward.items() if t} == {}
