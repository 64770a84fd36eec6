"""No import circle inside a layer's folder: every import counts, at module level or
inside a function (a lazy import back up is still a circle: it only hides it from
import time).  The runtime reads bottom to top cache, cache_key, native -> cffi_build,
predictor, pymodule, ... -> loaders (the registry) -> distributed."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "mlpcodegen"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(name: str, path: Path):
    """Every module name ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = (base + ("." + node.module if node.module else "")) if node.level else node.module
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def _graph(prefix: str) -> dict:
    modules = {_module(path): path for path in ROOT.rglob("*.py")}
    inside = {name for name in modules if name.startswith(prefix + ".")}
    return {name: {target for target in _imports(name, modules[name]) if target in inside and target != name}
            for name in inside}


def _circle(graph: dict) -> list:
    """One circle of ``graph`` (a list of modules, first == last), or [] when it has none."""
    state: dict = {}

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[node] = "done"
        return []

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return []


def test_the_circle_finder_finds_one():
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("folder", ["runtime", "frontends"])
def test_no_import_circle_inside(folder):
    graph = _graph(f"mlpcodegen.{folder}")
    assert len(graph) > 3
    assert _circle(graph) == []
