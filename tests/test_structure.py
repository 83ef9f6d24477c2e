"""The package's shape: no import cycle, ``api/`` free of hooks, one default connection id."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import airflow_provider_spotfire

PACKAGE = "airflow_provider_spotfire"
ROOT = Path(airflow_provider_spotfire.__file__).parent
EXCLUDED: tuple[str, ...] = ()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: path for name, path in found.items() if not name.startswith(EXCLUDED)}


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """Our modules that ``path`` imports anywhere (module level and inside functions), at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for block in ast.walk(tree) if _type_checking_only(block) for n in ast.walk(block)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known
            targets.update(submodules)  # ``from pkg import module`` imports pkg.module
            if len(submodules) < len(node.names):  # and names defined in pkg itself
                targets.add(base)
    return {t for t in targets if t in known and t != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported_modules(path, name, set(found)) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 30, "the walk found too few modules to be meaningful"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_sees_module_level_and_function_level_imports(tmp_path):
    # what the finder reports for a cycle closed only by a function-level import
    a = tmp_path / "a.py"
    a.write_text("from pkg import b\n")
    b = tmp_path / "b.py"
    b.write_text("def f():\n    from pkg.a import thing\n    return thing\n")
    graph = {
        "pkg.a": imported_modules(a, "pkg.a", {"pkg.a", "pkg.b"}),
        "pkg.b": imported_modules(b, "pkg.b", {"pkg.a", "pkg.b"}),
    }
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]


def test_importing_a_sibling_module_is_not_an_edge_to_the_package(tmp_path):
    inner = tmp_path / "inner.py"
    inner.write_text("from pkg import fmt\nfrom pkg import helper, fmt as f\n")
    known = {"pkg", "pkg.fmt", "pkg.inner"}
    assert imported_modules(inner, "pkg.inner", {"pkg.fmt", "pkg.inner"}) == {"pkg.fmt"}
    assert imported_modules(inner, "pkg.inner", known) == {"pkg", "pkg.fmt"}  # helper lives in pkg


def test_type_checking_imports_are_not_run_time_edges(tmp_path):
    a = tmp_path / "a.py"
    a.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n")
    assert imported_modules(a, "pkg.a", {"pkg.a", "pkg.b"}) == set()


def _api_modules() -> list[str]:
    return sorted(n for n in modules() if n.startswith(f"{PACKAGE}.api."))


@pytest.mark.parametrize("name", _api_modules())
def test_api_modules_import_no_hook_operator_or_trigger(name):
    found = modules()
    layers = (f"{PACKAGE}.hooks", f"{PACKAGE}.operators", f"{PACKAGE}.sensors", f"{PACKAGE}.triggers")
    upward = {m for m in imported_modules(found[name], name, set(found)) if m.startswith(layers)}
    assert not upward, f"{name} imports {sorted(upward)}: api/ holds the Spotfire APIs only"


def test_the_default_connection_id_is_written_once():
    # The emulator imports no client code, so its pytest plugin names the id it creates itself.
    literal = '"spotfire_default"'
    client = {n: p for n, p in modules().items() if not n.startswith(f"{PACKAGE}.emulator")}
    places = [
        f"{name}:{lineno}"
        for name, path in client.items()
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if literal in line and not line.lstrip().startswith("#")
    ]
    assert [p.split(":")[0] for p in places] == [f"{PACKAGE}._connection"], places
