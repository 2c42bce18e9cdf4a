"""The package stays readable: small modules, short functions, short parameter lists,
and layers that point one way (views and the store never import the controller)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "conveyor"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_PARAMETERS = 8  # self and cls not counted


def _modules() -> list[tuple[Path, ast.Module, int]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        found.append((path.relative_to(PACKAGE.parent), ast.parse(text), len(text.splitlines())))
    return found


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    args = node.args
    names = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    count = len(names) + bool(args.vararg) + bool(args.kwarg)
    return count - bool(names and names[0].arg in ("self", "cls"))


def test_modules_functions_and_parameter_lists_stay_small():
    too_long, too_big, too_many = [], [], []
    for path, tree, lines in _modules():
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{path}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{path}:{node.lineno} {node.name}: {length} lines")
                if _parameters(node) > MAX_PARAMETERS:
                    too_many.append(f"{path}:{node.lineno} {node.name}: {_parameters(node)}")
    assert not too_long, too_long
    assert not too_big, too_big
    assert not too_many, too_many


def _imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_views_and_the_store_never_import_the_controller_or_a_stage():
    controller = ("conveyor.controller", "conveyor.pipeline")
    stages = ("conveyor.collect", "conveyor.analyze", "conveyor.prepare", "conveyor.train",
              "conveyor.validate", "conveyor.meta", "conveyor.serve", "conveyor.report")
    wrong = []
    for path, tree, _ in _modules():
        parts = path.parts
        imported = _imports(tree)
        if parts[1] in ("report", "store", "serve") or parts[1:] == ("configdoc.py",):
            wrong += [f"{path} imports {n}" for n in imported if n.startswith(controller)]
        if parts[1] == "store":
            wrong += [f"{path} imports {n}" for n in imported if n.startswith(stages)]
    assert not wrong, wrong


def test_the_package_has_no_import_cycle():
    graph: dict[str, set[str]] = {}
    for path, tree, _ in _modules():
        name = ".".join(path.with_suffix("").parts).removesuffix(".__init__")
        # imports at module level only: one inside a function runs when it is called
        top = ast.Module(body=[n for n in tree.body
                               if isinstance(n, ast.Import | ast.ImportFrom)], type_ignores=[])
        graph[name] = {n for n in _imports(top) if n.startswith("conveyor")}
    for name in graph:  # a package's own __init__ re-exporting its modules is no cycle
        graph[name] = {n for n in graph[name]
                       if n in graph and n != name and not name.startswith(n + ".")}

    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    return [*trail, start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
        return None

    cycles = [c for name in graph if (c := cycle_from(name))]
    assert not cycles, cycles[0]
