#!/usr/bin/env python3
"""relayer: move mlpcodegen's loose top-level modules into ``core/`` and ``app/`` (issue 23
item 4, /work/wt/LAYOUT.md) and rewrite every reference to their old paths.

    python relayer.py TREE            # move files still at old paths, rewrite references
    python relayer.py TREE --check    # list what would change; exit 1 if anything would

Idempotent, and safe on a tree that is partly converted or holds files it has never seen:

* files still at an old path are moved (``git mv`` inside a git work tree) unless the new
  path already exists (then both are reported and left alone: merge them by hand);
* absolute names ``mlpcodegen.<old>`` anywhere in text (imports, ``mock.patch`` strings,
  ``importlib`` names, ``python -m``, docs, pyproject's entry point) become the new names;
  ``mlpcodegen/<old>.py`` file paths in text become the new paths;
* ``from mlpcodegen import ir, load`` is split by where each name now lives;
* relative imports inside the package are resolved against the file's OLD location (the
  one its author wrote them for) -- or, when that does not name a module of the old layout,
  against its current location (a file already converted) -- and re-rendered relative to
  the file's current location.  Only imports whose meaning changes are rewritten, so a
  second run changes nothing.

Standard library only (Python >= 3.8).
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = "mlpcodegen"
CORE = ["ir", "errors", "numeric", "activations", "limits", "_files", "untrusted", "graph", "graph_eval",
        "network_graph", "reference", "passes", "scaling", "fixed", "quant", "ptq", "simplify"]
APP = ["cli", "cli_embedded", "cli_simplify", "demo", "plot", "support"]

#: old top-level name -> new dotted module (a package moves with everything under it)
MOVES = {**{f"{ROOT}.{m}": f"{ROOT}.core.{m}" for m in CORE}, **{f"{ROOT}.{m}": f"{ROOT}.app.{m}" for m in APP}}
_OLD = "|".join(sorted((m for m in CORE + APP), key=len, reverse=True))
#: ``mlpcodegen.<old>`` not preceded by a name character or a dot, and ending at a word end
DOTTED = re.compile(rf"(?<![\w.]){ROOT}\.({_OLD})(?!\w)")
#: ``mlpcodegen/<old>.py`` or ``mlpcodegen/<old>/`` (a package), same guards
PATHS = re.compile(rf"(?<![\w./]){ROOT}/({_OLD})(?=\.py\b|/)")

TEXT_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".ini", ".txt", ".yml", ".yaml", ".rst", ".sh", ".json"}
SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", "node_modules", "site", "build", "dist", ".venv"}


def move_name(name: str) -> str:
    """The new dotted name of ``name`` (unchanged when it did not move)."""
    for old, new in MOVES.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return name


def old_name(name: str) -> str:
    """The inverse of :func:`move_name` (for a module's old location)."""
    for old, new in MOVES.items():
        if name == new or name.startswith(new + "."):
            return old + name[len(new):]
    return name


# ------------------------------------------------------------------ the files


class Tree:
    def __init__(self, root: Path):
        self.root = root.resolve()
        self.package = self.root / ROOT

    def module_of(self, path: Path) -> tuple[str, bool]:
        """(dotted module name, is a package __init__) of a source file of the package."""
        parts = list(path.relative_to(self.root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        return ".".join(parts), is_pkg

    def exists(self, dotted: str) -> bool:
        """Whether ``dotted`` is a module or package of the tree as it is now."""
        rel = Path(*dotted.split("."))
        return (self.root / rel).with_suffix(".py").is_file() or (self.root / rel / "__init__.py").is_file()

    def existed(self, dotted: str) -> bool:
        """Whether ``dotted`` names a module of the OLD layout (moved or not)."""
        if move_name(dotted) != dotted:
            return self.exists(move_name(dotted)) or self.exists(dotted) or dotted in MOVES
        return self.exists(dotted) and old_name(dotted) == dotted

    def text_files(self):
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            rel = Path(dirpath).relative_to(self.root)
            if rel.parts[:1] == ("generated",) or rel.parts[:2] == ("tests", "data"):
                # generated/ is written by generated/regenerate.py (kept); tests/data holds model files
                filenames = [f for f in filenames if f == "regenerate.py" or rel.parts[:1] != ("generated",)]
                if rel.parts[:2] == ("tests", "data"):
                    filenames = [f for f in filenames if f.endswith(".py")]
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.suffix in TEXT_SUFFIXES or name in {"run", "Makefile"} or rel.parts[:1] == (".ci",):
                    yield path


def move_files(tree: Tree, check: bool, report: list[str]) -> list[str]:
    """Move modules still at their old paths; return the problems."""
    problems = []
    in_git = subprocess.run(["git", "-C", str(tree.root), "rev-parse", "--is-inside-work-tree"],
                            capture_output=True, text=True).returncode == 0
    for old, new in MOVES.items():
        short = old.split(".", 1)[1]
        for suffix in (".py", ""):
            src = tree.package / (short + suffix)
            if not (src.is_file() if suffix else src.is_dir()):
                continue
            dst = tree.root / Path(*new.split(".")).with_suffix(suffix) if suffix else tree.root / Path(*new.split("."))
            if suffix == "" and dst.is_dir():
                # a package that moved already: move what was added at the old path since
                for item in sorted(p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                    target = dst / item.relative_to(src)
                    if target.exists():
                        problems.append(f"both {item.relative_to(tree.root)} and {target.relative_to(tree.root)} exist")
                    else:
                        _move(item, target, tree, in_git, check, report)
                continue
            if dst.exists():
                problems.append(f"both {src.relative_to(tree.root)} and {dst.relative_to(tree.root)} exist")
                continue
            _move(src, dst, tree, in_git, check, report)
    for package in ("core", "app"):
        init = tree.package / package / "__init__.py"
        if (tree.package / package).is_dir() and not init.exists():
            report.append(f"create {init.relative_to(tree.root)}")
            if not check:
                init.write_text(_INIT[package], encoding="utf-8")
                if in_git:
                    subprocess.run(["git", "-C", str(tree.root), "add", str(init)], check=True)
    return problems


_INIT = {
    "core": '"""The core: the IR, the expression graph and its evaluators, passes, fixed-point planning and\n'
            'simplification.  It knows no framework and no language (see mlpcodegen/_layers.py)."""\n',
    "app": '"""The application: the command line, the demo and the plot; it wires the layers below\n'
           '(see mlpcodegen/_layers.py)."""\n',
}


def _move(src: Path, dst: Path, tree: Tree, in_git: bool, check: bool, report: list[str]) -> None:
    report.append(f"move {src.relative_to(tree.root)} -> {dst.relative_to(tree.root)}")
    if check:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tracked = in_git and subprocess.run(["git", "-C", str(tree.root), "ls-files", "--error-unmatch", str(src)],
                                        capture_output=True).returncode == 0
    if tracked:
        subprocess.run(["git", "-C", str(tree.root), "mv", str(src), str(dst)], check=True)
    else:
        src.rename(dst)
    if src.is_dir() and not any(src.iterdir()):
        src.rmdir()


# ------------------------------------------------------------------ rewriting one file


def _resolve(module: str, is_pkg: bool, level: int, target: str | None) -> str | None:
    """Absolute base of ``from <level dots><target> import`` in ``module``; None past the top."""
    package = module.split(".") if is_pkg else module.split(".")[:-1]
    if level - 1 > len(package) - 1:  # the top package is the last one a relative import may reach
        return None
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _relative(current: str, is_pkg: bool, target: str) -> tuple[int, str]:
    """(level, module) to write ``target`` relative to module ``current``."""
    here = current.split(".") if is_pkg else current.split(".")[:-1]
    there = target.split(".")
    common = 0
    while common < min(len(here), len(there)) and here[common] == there[common]:
        common += 1
    return len(here) - common + 1, ".".join(there[common:])


def _render_from(level: int, module: str, names: list[ast.alias], indent: str) -> str:
    rendered = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in names)
    head = f"from {'.' * level}{module} import "
    line = indent + head + rendered
    if len(line) <= 118:
        return line
    return indent + head + "(\n" + "".join(f"{indent}    {a.name}{f' as {a.asname}' if a.asname else ''},\n"
                                            for a in names) + indent + ")"


def _rewrite_import(node: ast.ImportFrom, tree: Tree, current: str, is_pkg: bool, in_package: bool) -> list[str] | None:
    """The statements replacing ``node`` (as [from-module renderings]), or None to keep it."""
    if node.level == 0:
        if node.module is None or not (node.module == ROOT or node.module.startswith(ROOT + ".")):
            return None
        base = node.module
    else:
        if not in_package:
            return None
        old_current = old_name(current)
        base = _resolve(old_current, is_pkg, node.level, node.module)
        if base is None or not (tree.existed(base) or base == ROOT):
            base = _resolve(current, is_pkg, node.level, node.module)
        if base is None:
            return None
    # group the imported names by the module they now come from
    groups: dict[str, list[ast.alias]] = {}
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if move_name(base) == base and move_name(sub) != sub:  # a moved module named from its old parent
            container = move_name(sub).rsplit(".", 1)[0]
        else:
            container = move_name(base)
        groups.setdefault(container, []).append(alias)
    if node.level == 0:
        if list(groups) == [node.module]:
            return None
        return [_render_abs(container, aliases) for container, aliases in groups.items()]
    out = []
    unchanged = True
    for container, aliases in groups.items():
        level, module = _relative(current, is_pkg, container)
        if (level, module) != (node.level, node.module or "") or len(groups) > 1:
            unchanged = False
        out.append((level, module, aliases))
    if unchanged:
        return None
    return [(lvl, mod, al) for lvl, mod, al in out]


def _render_abs(container: str, aliases: list[ast.alias]) -> tuple[int, str, list[ast.alias]]:
    return (0, container, aliases)


def rewrite_python(path: Path, text: str, tree: Tree) -> str:
    try:
        parsed = ast.parse(text)
    except SyntaxError:
        return text
    in_package = path.resolve().is_relative_to(tree.package) if hasattr(Path, "is_relative_to") else \
        str(path.resolve()).startswith(str(tree.package) + os.sep)
    current, is_pkg = tree.module_of(path.resolve()) if in_package else ("", False)
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    edits = []
    for node in ast.walk(parsed):
        if not isinstance(node, ast.ImportFrom):
            continue
        new = _rewrite_import(node, tree, current, is_pkg, in_package)
        if new is None:
            continue
        start = offsets[node.lineno - 1] + _char_col(lines[node.lineno - 1], node.col_offset)
        end = offsets[node.end_lineno - 1] + _char_col(lines[node.end_lineno - 1], node.end_col_offset)
        indent = " " * node.col_offset
        first_line = lines[node.lineno - 1]
        own_line = first_line[:_char_col(first_line, node.col_offset)].strip() == ""
        if not own_line and len(new) > 1:
            # ``if x: from . import a, b`` on one line: keep it one statement per group joined by ;
            rendered = "; ".join(_render_from(lvl, mod, al, "") for lvl, mod, al in new)
        else:
            rendered = ("\n").join(_render_from(lvl, mod, al, indent) for lvl, mod, al in new)[len(indent):]
        edits.append((start, end, rendered))
    for start, end, rendered in sorted(edits, reverse=True):
        text = text[:start] + rendered + text[end:]
    return text


def _char_col(line: str, byte_col: int) -> int:
    """ast's col_offset counts UTF-8 bytes; convert to characters."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def rewrite_text(text: str) -> str:
    text = DOTTED.sub(lambda m: move_name(f"{ROOT}.{m.group(1)}"), text)
    return PATHS.sub(lambda m: move_name(f"{ROOT}.{m.group(1)}").replace(".", "/"), text)


def rewrite_file(path: Path, tree: Tree) -> str | None:
    """The new text of ``path``, or None when unchanged."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    new = rewrite_python(path, text, tree) if path.suffix == ".py" else text
    new = rewrite_text(new)
    return None if new == text else new


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    check = "--check" in argv
    if len(args) != 1 or not (Path(args[0]) / ROOT / "__init__.py").is_file():
        print("usage: relayer.py TREE [--check]   (TREE holds mlpcodegen/__init__.py)", file=sys.stderr)
        return 2
    tree = Tree(Path(args[0]))
    report: list[str] = []
    problems = move_files(tree, check, report)
    for path in tree.text_files():
        new = rewrite_file(path, tree)
        if new is not None:
            report.append(f"rewrite {path.relative_to(tree.root)}")
            if not check:
                path.write_text(new, encoding="utf-8")
    for line in report:
        print(line)
    for line in problems:
        print("PROBLEM:", line, file=sys.stderr)
    if problems:
        return 1
    return 1 if (check and report) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
