"""Imports point one way: app -> cli -> routes -> services -> utils, with config beside them; no module imports in a circle.

Every import of every module is read with `ast` (those inside functions too, which a lazy import
would hide from a plain `import` check), so the picture a new maintainer draws from the code is
the one the code keeps.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("app", "cli", "config", "gunicorn_worker", "routes", "services", "utils", "emulator", "bench", "tests")
# Which first-party parts each part may import (its own modules always).
ALLOWED: dict[str, frozenset[str]] = {
    "app": frozenset({"cli", "config", "routes", "services", "utils", "emulator"}),
    "gunicorn_worker": frozenset({"routes", "services", "utils"}),
    "cli": frozenset({"config", "routes", "services", "utils"}),
    "routes": frozenset({"config", "services", "utils"}),
    "services": frozenset({"utils"}),
    "utils": frozenset(),
    "config": frozenset({"utils"}),
    "emulator": frozenset({"utils"}),
    "bench": frozenset({"app", "cli", "config", "routes", "services", "utils", "emulator"}),
    "tests": frozenset(FIRST_PARTY),
}
# Third-party packages a part must not import: utils and config know nothing of Flask.
FORBIDDEN_THIRD_PARTY: dict[str, frozenset[str]] = {
    "utils": frozenset({"flask", "werkzeug", "flask_cors"}),
    "config": frozenset({"flask", "werkzeug", "flask_cors"}),
}


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every first-party module by dotted name (packages by their own name)."""
    found: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if relative.parts[0] not in {f"{p}.py" for p in FIRST_PARTY} and relative.parts[0] not in FIRST_PARTY:
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """Dotted names `name` imports (`from a import b` names a.b when that is a module), relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in modules else base


def part_of(name: str) -> str:
    """The part a module belongs to: its top-level package or module."""
    return name.split(".")[0]


def first_party_target(imported: str, modules: dict[str, Path]) -> str | None:
    """The first-party module an import names (the longest known prefix), or None for a third-party one."""
    parts = imported.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph(root: Path = ROOT) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(first-party module -> first-party modules it imports, module -> third-party top-level packages it imports)."""
    modules = module_files(root)
    graph: dict[str, set[str]] = {}
    third_party: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name], third_party[name] = set(), set()
        for imported in imports_of(name, path, modules):
            target = first_party_target(imported, modules)
            if target is None:
                third_party[name].add(imported.split(".")[0])
            elif target != name:
                graph[name].add(target)
    return graph, third_party


def wrong_way_imports(graph: dict[str, set[str]], third_party: dict[str, set[str]]) -> list[str]:
    """Each import that points against the layers, as 'importer -> imported'."""
    wrong = []
    for name, targets in sorted(graph.items()):
        part = part_of(name)
        for target in sorted(targets):
            if part_of(target) != part and part_of(target) not in ALLOWED[part]:
                wrong.append(f"{name} -> {target}")
        for package in sorted(third_party[name] & FORBIDDEN_THIRD_PARTY.get(part, frozenset())):
            wrong.append(f"{name} -> {package} (third party)")
    return wrong


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `graph` (each once, as a list of modules starting at its smallest), found with Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    return import_graph()


def test_every_import_points_down_the_layers(graph):
    assert wrong_way_imports(*graph) == []


def test_no_module_imports_in_a_circle(graph):
    modules, _ = graph
    # A package's __init__ that re-exports its modules is not a circle with them.
    assert [cycle for cycle in cycles(modules) if not _only_package_reexports(cycle, modules)] == []


def _only_package_reexports(cycle: list[str], modules: dict[str, set[str]]) -> bool:
    """True for a cycle made only of a package importing its own submodules and those importing the package's siblings."""
    packages = [name for name in cycle if any(other.startswith(name + ".") for other in cycle)]
    if not packages:
        return False
    rest = {name: modules[name] - set(packages) for name in cycle if name not in packages}
    return not cycles(rest)


def test_no_test_module_is_imported_by_another(graph):
    modules, _ = graph
    importers = [
        f"{name} -> {target}" for name, targets in modules.items() for target in targets if target.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert importers == []


def test_the_check_sees_a_wrong_way_import_and_a_circle(tmp_path):
    """The rules catch what they are for: a module tree with a circle and an import against the layers fails them."""
    (tmp_path / "utils").mkdir()
    (tmp_path / "services").mkdir()
    (tmp_path / "utils" / "__init__.py").write_text("")
    (tmp_path / "services" / "__init__.py").write_text("")
    (tmp_path / "utils" / "clock.py").write_text("import flask\n\ndef now():\n    from services.work import later\n")
    (tmp_path / "services" / "work.py").write_text("from utils.clock import now\n")
    modules, third_party = import_graph(tmp_path)
    assert wrong_way_imports(modules, third_party) == ["utils.clock -> services.work", "utils.clock -> flask (third party)"]
    assert cycles(modules) == [["services.work", "utils.clock"]]
