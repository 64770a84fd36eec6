"""The import direction of the package, read from the source with ``ast`` (imports
inside functions count: a lazy import is still a dependency).

Layers, lowest first:

* core: every top-level module that is not an application module (``ir``, ``errors``,
  ``numeric``, ``activations``, ``limits``, ``_files``, ``graph``, ``network_graph``,
  ``reference``, ``passes``, ``scaling``, ...): imports only core.
* frontends (``mlpcodegen.frontends``): core's ir, errors, limits, _files, numeric,
  activations, scaling, passes, untrusted, quant (the int8 IR a .tflite fills); and other frontends.  They know their framework.
* backends (``mlpcodegen.backends``): core's ir, errors, numeric, activations, the
  graph modules (``*graph*``), scaling, passes, reference, limits, untrusted, fixed, quant; and other backends.
  They know their language and only emit: no runtime, no harness, no frontends.
* runtime (``mlpcodegen.runtime``): core, backends, runtime.
* harness (``mlpcodegen.harness``): anything below it; of the harness only
  ``harness.peers`` imports a frontend.
* application (``mlpcodegen`` itself, ``__main__``, ``cli``, ``cli_embedded``, ``cli_simplify``, ``demo``, ``plot``,
  ``support``): anything.  Of them only ``mlpcodegen``, the ``cli*`` modules and ``demo``
  import the harness.

TensorFlow and Keras are imported only by frontends, the harness and the application.
There is no cycle between layers.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mlpcodegen

PACKAGE = Path(mlpcodegen.__file__).resolve().parent
ROOT = "mlpcodegen"

SUBPACKAGE_LAYERS = {"frontends": "frontends", "backends": "backends", "runtime": "runtime", "harness": "harness"}
APPLICATION = {ROOT, f"{ROOT}.__main__", f"{ROOT}.cli", f"{ROOT}.cli_embedded", f"{ROOT}.cli_simplify",
               f"{ROOT}.demo", f"{ROOT}.plot", f"{ROOT}.support"}
ALL_LAYERS = {"core", "frontends", "backends", "runtime", "harness", "application"}

#: layer -> the layers its modules may import
MAY_IMPORT = {
    "core": {"core"},
    "frontends": {"core", "frontends"},
    "backends": {"core", "backends"},
    "runtime": {"core", "backends", "runtime"},
    "harness": {"core", "frontends", "backends", "runtime", "harness"},
    "application": ALL_LAYERS,
}

#: layer -> the core modules it may import (layers not listed: any core module)
CORE_ALLOWED = {
    "frontends": {"ir", "errors", "limits", "_files", "numeric", "activations", "scaling", "passes", "untrusted",
                  "quant"},
    "backends": {"ir", "errors", "numeric", "activations", "scaling", "passes", "reference", "limits", "*graph*",
                 "untrusted", "fixed", "quant"},
}

HARNESS_IMPORTERS = {ROOT, f"{ROOT}.cli", f"{ROOT}.cli_embedded", f"{ROOT}.cli_simplify", f"{ROOT}.demo"}
FRAMEWORKS = {"tensorflow", "keras", "tf_keras"}
FRAMEWORK_LAYERS = {"frontends", "harness", "application"}


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
    parts = module.split(".")
    if module in APPLICATION:
        return "application"
    if len(parts) > 1 and parts[1] in SUBPACKAGE_LAYERS:
        return SUBPACKAGE_LAYERS[parts[1]]
    return "core"


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
            short = name.split(".")[1] if "." in name else name
            if not _core_name_allowed(short, CORE_ALLOWED[mine]):
                problems.append(f"{_where(module, line)} imports {name}: of the core, {mine} may import only "
                                f"{', '.join(sorted(CORE_ALLOWED[mine]))}")
    _fail_with(problems, "imports against the layering (see tests/test_layering.py's docstring)")


def test_only_the_application_and_the_harness_import_the_harness():
    problems = [f"{_where(module, line)} imports {name}"
                for module, name, line in _internal_imports()
                if layer_of(name) == "harness" and layer_of(module) != "harness" and module not in HARNESS_IMPORTERS]
    _fail_with(problems, f"only the harness and {', '.join(sorted(HARNESS_IMPORTERS))} may import the harness")


def test_the_harness_reaches_frontends_only_through_peers():
    problems = [f"{_where(module, line)} imports {name}"
                for module, name, line in _internal_imports()
                if layer_of(module) == "harness" and layer_of(name) == "frontends"
                and module != f"{ROOT}.harness.peers"]
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
            "loaded = sorted(m for m in sys.modules if m.startswith('mlpcodegen.') and m != 'mlpcodegen.core.errors')\n"
            "print(loaded)\n"
            "print(all(getattr(mlpcodegen, name) is not None for name in mlpcodegen.__all__))\n"
            "print(mlpcodegen.verify.__module__, mlpcodegen.compile_c.__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:3] == ["[]", "True", "mlpcodegen.harness.verify mlpcodegen.runtime.loaders"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        getattr(mlpcodegen, "nothing")
