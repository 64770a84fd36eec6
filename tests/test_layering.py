"""The import direction of the package, read from the source with ``ast`` (imports
inside functions count: a lazy import is still a dependency), checked against the layer
map mlpcodegen/_layers.py (the data docs/architecture.md is written from).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mlpcodegen
from mlpcodegen import _layers

PACKAGE = Path(mlpcodegen.__file__).resolve().parent
ROOT = "mlpcodegen"
ALL_LAYERS = {layer.name for layer in _layers.LAYERS}
MAY_IMPORT = {layer.name: set(layer.may_import) for layer in _layers.LAYERS}
CORE_ALLOWED = {name: set(modules) for name, modules in _layers.CORE_FOR.items()}
HARNESS_IMPORTERS = {f"{ROOT}.{m}" if m else ROOT for m in _layers.HARNESS_IMPORTERS}
FRONTEND_GATES = {f"{ROOT}.{m}" for m in _layers.FRONTEND_GATES}
FRAMEWORKS = set(_layers.FRAMEWORKS)
FRAMEWORK_LAYERS = set(_layers.FRAMEWORK_LAYERS)
KNOWN_CYCLES = {frozenset(f"{ROOT}.{m}" for m in cycle) for cycle in _layers.KNOWN_CYCLES}


def _module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([ROOT, *parts])] = path
    return found


MODULES = _module_files()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def resolve(module: str, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    package = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module: str) -> list[tuple[str, int]]:
    """(absolute imported name, line) for every import in ``module``, at any depth; a
    ``from X import name`` names the submodule ``X.name`` when there is one."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(module, node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in MODULES else base, node.lineno))
    return found


def layer_of(module: str) -> str:
    return _layers.layer_of(module[len(ROOT) + 1:] if module != ROOT else "")


def _core_name_allowed(name: str, allowed: set[str]) -> bool:
    return name in allowed or ("*graph*" in allowed and "graph" in name)


def _internal_imports() -> list[tuple[str, str, int]]:
    """(importer, imported module of the package, line) for every import of the package."""
    return sorted({(module, name, line) for module in MODULES for name, line in imports_of(module)
                   if name == ROOT or name.startswith(ROOT + ".")})


def _where(module: str, line: int) -> str:
    return f"{module} ({MODULES[module].relative_to(PACKAGE.parent)}:{line})"


def _fail_with(problems: list[str], rule: str) -> None:
    if problems:
        pytest.fail(f"{rule}:\n  " + "\n  ".join(problems), pytrace=False)


# ------------------------------------------------------------------ the walker itself


def test_relative_imports_resolve_and_lazy_imports_are_seen():
    assert resolve(f"{ROOT}.backends.c", 2, "harness.cffi_build") == f"{ROOT}.harness.cffi_build"
    assert resolve(f"{ROOT}.app.cli", 2, "core.ir") == f"{ROOT}.core.ir"
    assert resolve(f"{ROOT}.backends", 1, None) == f"{ROOT}.backends"
    assert resolve(f"{ROOT}.runtime.loaders", 1, "pymodule") == f"{ROOT}.runtime.pymodule"
    # harness.bench imports runtime.cffi_build inside a function only
    assert f"{ROOT}.runtime.cffi_build" in {name for name, _ in imports_of(f"{ROOT}.harness.bench")}
    # `from . import c, latex` names the submodules
    assert {f"{ROOT}.backends.c", f"{ROOT}.backends.latex"} <= {name for name, _ in imports_of(f"{ROOT}.backends")}
    assert {layer_of(m) for m in MODULES} == ALL_LAYERS


# ------------------------------------------------------------------ the rules


def test_every_import_goes_down_the_layers():
    problems = []
    for module, name, line in _internal_imports():
        mine, theirs = layer_of(module), layer_of(name)
        if theirs not in MAY_IMPORT[mine]:
            problems.append(f"{_where(module, line)} imports {name}: the {mine} layer may import only "
                            f"{', '.join(sorted(MAY_IMPORT[mine]))}, not {theirs}")
        elif theirs == "core" and mine in CORE_ALLOWED:
            short = name.split(".")[2]
            if not _core_name_allowed(short, CORE_ALLOWED[mine]):
                problems.append(f"{_where(module, line)} imports {name}: of the core, {mine} may import only "
                                f"{', '.join(sorted(CORE_ALLOWED[mine]))}")
    _fail_with(problems, "imports against the layering (see mlpcodegen/_layers.py)")


def test_only_the_application_and_the_harness_import_the_harness():
    problems = [f"{_where(module, line)} imports {name}"
                for module, name, line in _internal_imports()
                if layer_of(name) == "harness" and layer_of(module) != "harness" and module not in HARNESS_IMPORTERS]
    _fail_with(problems, f"only the harness and {', '.join(sorted(HARNESS_IMPORTERS))} may import the harness")


def test_the_harness_reaches_frontends_only_through_peers():
    problems = [f"{_where(module, line)} imports {name}"
                for module, name, line in _internal_imports()
                if layer_of(module) == "harness" and layer_of(name) == "frontends"
                and module not in FRONTEND_GATES]
    _fail_with(problems, "of the harness only harness.peers imports a frontend (verify and bench use peers)")


def test_frameworks_are_imported_only_by_frontends_harness_and_application():
    problems = [f"{_where(module, line)} imports {name}"
                for module in MODULES for name, line in imports_of(module)
                if name.split(".")[0] in FRAMEWORKS and layer_of(module) not in FRAMEWORK_LAYERS]
    _fail_with(problems, f"TensorFlow/Keras belong to {', '.join(sorted(FRAMEWORK_LAYERS))}")


def test_no_cycle_between_layers():
    edges: dict[str, dict[str, str]] = {}
    for module, name, line in _internal_imports():
        mine, theirs = layer_of(module), layer_of(name)
        if mine != theirs:
            edges.setdefault(mine, {}).setdefault(theirs, f"{_where(module, line)} imports {name}")
    cycle = _find_cycle({layer: set(targets) for layer, targets in edges.items()})
    if cycle is not None:
        _fail_with([edges[a][b] for a, b in zip(cycle, cycle[1:])],
                   "import cycle between layers " + " -> ".join(cycle))


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]  # an open node is on the path
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_every_import_of_the_package_names_one_of_its_modules():
    """A lazy import of a module that moved fails only when it runs: catch it here."""
    problems = [f"{_where(module, line)} imports {name}, which is not a module of the package"
                for module, name, line in _internal_imports() if name not in MODULES]
    _fail_with(problems, "imports of modules that do not exist")


def test_the_package_imports_its_public_functions_on_first_use():
    """``import mlpcodegen`` loads no frontend, printer, runtime or harness (a caller pays
    for the layers it uses); every name of ``__all__`` still resolves, to its module's object."""
    import subprocess
    import sys

    code = ("import sys, mlpcodegen\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('mlpcodegen.') and m not in ('mlpcodegen.core', 'mlpcodegen.core.errors'))\n"
            "print(loaded)\n"
            "print(all(getattr(mlpcodegen, name) is not None for name in mlpcodegen.__all__))\n"
            "print(mlpcodegen.verify.__module__, mlpcodegen.compile_c.__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:3] == ["[]", "True", "mlpcodegen.harness.verify mlpcodegen.runtime.loaders"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        getattr(mlpcodegen, "nothing")


# ------------------------------------------------------------------ cycles between modules


def _module_cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of ``graph`` with more than one node (Tarjan,
    iterative): each is a set of modules importing each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
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
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_the_module_cycle_finder_finds_cycles():
    assert _module_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    assert _module_cycles({"a": {"b"}, "b": {"c"}}) == []
    assert sorted(map(sorted, _module_cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}))) == [["a", "b"],
                                                                                                     ["c", "d"]]


def test_no_cycle_between_modules():
    """No module imports itself through others (a lazy import counts): the cycles of
    _layers.KNOWN_CYCLES excepted, each being broken; an entry no longer a cycle fails too,
    so the list shrinks as they go."""
    graph: dict[str, set[str]] = {}
    for module, name, _ in _internal_imports():
        if name != module and name in MODULES:
            graph.setdefault(module, set()).add(name)
    cycles = set(_module_cycles(graph))
    new = [", ".join(sorted(c)) for c in cycles - KNOWN_CYCLES]
    gone = [", ".join(sorted(c)) for c in KNOWN_CYCLES - cycles]
    _fail_with(new, "import cycles between modules")
    _fail_with(gone, "KNOWN_CYCLES in mlpcodegen/_layers.py lists cycles that are no longer cycles (remove them, "
                     f"or list what remains); the cycles now: {sorted(map(sorted, cycles))}")


# ------------------------------------------------------------------ the map itself


def test_every_module_belongs_to_one_layer_and_every_member_exists():
    assert {layer_of(m) for m in MODULES} == ALL_LAYERS
    for layer in _layers.LAYERS:
        assert set(layer.may_import) <= ALL_LAYERS and layer.name in layer.may_import
        for member in layer.members:
            assert (PACKAGE / member).is_dir() or (PACKAGE / f"{member}.py").is_file(), member
    for modules in _layers.CORE_FOR.values():
        assert all(m == "*graph*" or f"{ROOT}.core.{m}" in MODULES for m in modules)
    assert {m for m in HARNESS_IMPORTERS | FRONTEND_GATES} <= set(MODULES)


def test_no_module_sits_loose_at_the_top_of_the_package():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "_layers.py"]


def test_the_architecture_page_is_written_from_the_map():
    page = PACKAGE.parent / "docs" / "architecture.md"
    assert page.read_text(encoding="utf-8") == _layers.render_markdown(), (
        "docs/architecture.md is stale: python -c 'from mlpcodegen._layers import render_markdown; "
        "print(render_markdown(), end=\"\")' > docs/architecture.md")


def test_the_extending_page_names_files_that_exist():
    """docs/extending.md counts the files each kind of addition touches: every file it
    names exists, and each section's count is the number of rows numbered in its table."""
    import re

    text = (PACKAGE.parent / "docs" / "extending.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:mlpcodegen|bench)/[\w/]+\.py|pyproject\.toml)`", text))
    assert len(named) >= 10
    missing = sorted(path for path in named if not (PACKAGE.parent / path).is_file())
    assert not missing, f"docs/extending.md names files that do not exist: {missing}"
    for section in text.split("\n## ")[1:]:
        stated = int(re.match(r"[^:]+: (\d+) files?", section).group(1))
        rows = re.findall(r"^\| (\d+) \| `", section, flags=re.MULTILINE)
        assert [int(r) for r in rows] == list(range(1, stated + 1)), section.splitlines()[0]


def test_tables_keyed_by_a_registry_use_its_names():
    """The harness's per-format peers are keyed by the frontends' FORMATS names and the
    runtime's loaders by the backends' targets: a table cannot name what the registry lacks."""
    from mlpcodegen.backends import BACKENDS
    from mlpcodegen.frontends import FORMATS
    from mlpcodegen.harness import peers
    from mlpcodegen.runtime import LOADERS

    formats = {fmt.name for fmt in FORMATS}
    assert set(peers._FILE_PEERS) <= formats and set(peers._OBJECT_PEERS) <= formats
    assert set(LOADERS) <= set(BACKENDS)


def test_every_data_file_of_the_package_is_shipped():
    """A file the package reads at run time (drivers, linker scripts, C templates, name
    data) that pyproject's package-data does not match is missing from a wheel: an
    installed ``verify --core`` or ``compile_c`` would fail where the editable install works."""
    import fnmatch
    import tomllib

    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = pyproject["tool"]["setuptools"]["package-data"]
    missing = []
    for path in sorted(PACKAGE.rglob("*")):
        if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
            continue
        owners = [pkg for pkg in shipped if (PACKAGE.parent / pkg.replace(".", "/")) in path.parents]
        matched = any(fnmatch.fnmatch(path.relative_to(PACKAGE.parent / pkg.replace(".", "/")).as_posix(), pattern)
                      for pkg in owners for pattern in shipped[pkg])
        if not matched:
            missing.append(path.relative_to(PACKAGE).as_posix())
    assert not missing, f"not in pyproject's package-data: {missing}"
