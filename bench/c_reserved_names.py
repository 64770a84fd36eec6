"""Write mlpcodegen/backends/c_reserved.txt: the names the C library headers define in the
modes a generated file is built in, beyond what the table of mlpcodegen.backends.c_names
(C99's headers, keywords, the reserved patterns) already refuses.

    python bench/c_reserved_names.py            # rewrite the modes whose compiler is here
    python bench/c_reserved_names.py --check    # exit 1 when a present compiler's section differs

Each mode includes all 24 C99 headers (a user's program may include any of them next to the
generated header) and reads what they define: every macro (``-dM -E``), and every other word
of the preprocessed text that a file-scope ``static int NAME;`` after them collides with (one
compile, each name on its line, the compiler's errors read by line).  Names with a leading
underscore are left out: a pattern refuses them all.  tests/test_c_safety.py checks the table
against the same headers and fails when this file is stale (only where the compiler is).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mlpcodegen.backends import c_names  # noqa: E402

DATA = Path(c_names.__file__).with_name("c_reserved.txt")
#: mode -> (the compiler's command, the source suffix); what each mode is: c_names.HEADER_MODES.
#: glibc in gcc's default GNU mode and in g++ (which defines _GNU_SOURCE); newlib for the cores.
MODES: dict[str, tuple[list[str], str]] = {
    "gnu": (["gcc"], "c"),
    "c++": (["g++"], "cpp"),
    "c++11": (["g++", "-std=c++11"], "cpp"),
    "newlib": (["arm-none-eabi-gcc"], "c"),
}
assert set(MODES) == set(c_names.HEADER_MODES)
#: The flags of the generated code's builds: a name that only warns still breaks them.
FLAGS = ["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wno-unused-variable"]
HEADERS = "".join(f"#include {header}\n" for header in c_names.C99_HEADERS)
_COLLISION = re.compile(r"^probe\.(?:c|cpp):(\d+):\d+: error", re.MULTILINE)


def _probe(compiler: list[str], folder: Path, names: list[str], suffix: str) -> set[str]:
    """Which of ``names`` a file-scope ``static int NAME;`` after the headers breaks."""
    (folder / f"probe.{suffix}").write_text(HEADERS + "".join(f"static int {name};\n" for name in names))
    result = subprocess.run([*compiler, *FLAGS, "-fmax-errors=0", "-fsyntax-only", f"probe.{suffix}"], cwd=folder,
                            capture_output=True, text=True)
    first = HEADERS.count("\n") + 1
    lines = {int(line) for line in _COLLISION.findall(result.stderr)}
    if (result.returncode != 0) != bool(lines) or min(lines, default=first) < first:
        raise SystemExit(f"{' '.join(compiler)}: the probe did not compile as expected:\n{result.stderr[:2000]}")
    return {names[line - first] for line in lines}


def header_names(compiler: list[str], suffix: str) -> dict[str, str]:
    """name -> "macro" or "declared": what the C99 headers define under ``compiler``."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / f"headers.{suffix}").write_text(HEADERS)

        def run(*flags: str) -> str:
            return subprocess.run([*compiler, *flags, f"headers.{suffix}"], cwd=folder, capture_output=True,
                                  text=True, check=True).stdout

        macros = set(re.findall(r"^#define ([A-Za-z]\w*)", run("-dM", "-E"), re.MULTILINE))
        words = sorted(set(re.findall(r"\b[A-Za-z]\w*", run("-E", "-P"))) - macros)
        declared = _probe(compiler, folder, words, suffix)
    found = {name: "macro" for name in macros}
    found.update((name, "declared") for name in declared)
    return found


def section(mode: str) -> dict[str, str] | None:
    """name -> kind ("macro" or "declared") for ``mode``, or None without its compiler: the
    names the headers define that the table and its patterns do not already refuse."""
    compiler, suffix = MODES[mode]
    if shutil.which(compiler[0]) is None:
        return None
    return {name: kind for name, kind in header_names(compiler, suffix).items() if c_names.table_reason(name) is None}


def read_sections(path: Path = DATA) -> dict[str, dict[str, str]]:
    """mode -> name -> kind, from the data file (``NAME KIND MODE[,MODE...]`` lines)."""
    sections: dict[str, dict[str, str]] = {mode: {} for mode in MODES}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                name, kind, modes = line.split()
                for mode in modes.split(","):
                    sections.setdefault(mode, {})[name] = kind
    return sections


def render(sections: dict[str, dict[str, str]]) -> str:
    """One line per name: its kind where first seen (a macro in one mode may be declared in another)."""
    names = sorted({name for found in sections.values() for name in found})
    lines = ["# generated by bench/c_reserved_names.py -- do not edit",
             "# NAME KIND MODES: a name the C99 headers define (a macro, or declared at file scope) in these",
             "# modes, beyond the table of c_names.py; modes: " + "; ".join(f"{m} = {' '.join(c)}"
                                                                        for m, (c, _) in MODES.items())]
    for name in names:
        modes = [mode for mode in MODES if name in sections.get(mode, {})]
        lines.append(f"{name} {sections[modes[0]][name]} {','.join(modes)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    sections = read_sections()
    stale = []
    for mode in MODES:
        found = section(mode)
        if found is None:
            print(f"{mode}: {MODES[mode][0][0]} is not installed; its names are kept as they are", file=sys.stderr)
            continue
        if set(found) != set(sections.get(mode, {})):
            stale.append(mode)
        sections[mode] = found
    if args.check:
        if stale:
            print(f"{DATA} is stale for {', '.join(stale)}: python bench/c_reserved_names.py", file=sys.stderr)
        return 1 if stale else 0
    DATA.write_text(render(sections), encoding="utf-8")
    print(f"wrote {DATA} ({sum(1 for line in render(sections).splitlines() if not line.startswith('#'))} names)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
