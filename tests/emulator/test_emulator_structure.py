"""Structure rules of the emulator package, checked on its source with ``ast``.

* it imports no client code (nothing of ``airflow_provider_spotfire`` outside ``emulator/`` but the package
  root, for ``__version__``);
* its import graph has no cycle (imports under ``if TYPE_CHECKING:`` are not run and do not count);
* no emulator module is imported inside a function, except by the CLI and the pytest plugin, which import
  the server lazily on purpose (their own import stays cheap);
* no function is longer than 60 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_provider_spotfire.emulator as emulator_pkg

PACKAGE = "airflow_provider_spotfire"
EMULATOR = f"{PACKAGE}.emulator"
EMULATOR_DIR = Path(emulator_pkg.__file__).parent
LAZY_IMPORTERS = {"__main__", "pytest_plugin"}
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted(EMULATOR_DIR.glob("*.py"))}


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for every import that runs (not under TYPE_CHECKING)."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if _is_type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (EMULATOR_DIR / f"{alias.name}.py").exists() and node.module == EMULATOR
                found.append((candidate if is_module else node.module, in_function))
        for child in ast.iter_child_nodes(node):
            visit(child, in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, False)
    return found


def emulator_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, tree in modules().items():
        graph[name] = {
            mod.rsplit(".", 1)[1]
            for mod, _ in imports(tree)
            if mod.startswith(EMULATOR + ".") and mod.count(".") == 2
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_no_client_code_imported():
    offenders = {
        f"{name}: {mod}"
        for name, tree in modules().items()
        for mod, _ in imports(tree)
        if mod.startswith(PACKAGE) and mod != PACKAGE and not mod.startswith(EMULATOR)
    }
    assert not offenders


def test_import_graph_has_no_cycle():
    graph = emulator_graph()
    assert graph["state"] >= {"core", "oauth_store", "library_store", "automation_store", "licenses_store"}
    assert find_cycle(graph) is None, find_cycle(graph)


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_function_level_imports_of_emulator_modules():
    offenders = {
        f"{name}: {mod}"
        for name, tree in modules().items()
        if name not in LAZY_IMPORTERS
        for mod, in_function in imports(tree)
        if in_function and mod.startswith(EMULATOR)
    }
    assert not offenders


def test_functions_are_short():
    long = {
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert not long
