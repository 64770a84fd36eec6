#!/usr/bin/env python3
"""What the README's install weighs: a new virtual environment, ``pip install -e ".[all]"``,
its size on disk; and the part each extra's own packages take (what only they bring).

    python bench/install_size.py                 # make the venv in a temporary folder (minutes: it downloads)
    python bench/install_size.py --venv PATH     # measure a venv made by the same command

Writes bench/INSTALL.md.  The limit the project holds itself to is 3 GB.
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LIMIT = 3_000_000_000


def folder_bytes(path: Path) -> int:
    """``du -sb``: apparent sizes, folders included, each hard-linked file once."""
    return int(subprocess.run(["du", "-sb", str(path)], check=True, capture_output=True, text=True).stdout.split()[0])


def make_venv(path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(path / "bin" / "pip"), "install", "-q", "-e", f"{REPO}[all]"], check=True)


def installed(venv: Path) -> dict[str, dict]:
    """name -> {"requires": [...], "files": [paths]} of every distribution in the venv."""
    script = ("import json, importlib.metadata as m, re\n"
              "out = {}\n"
              "for d in m.distributions():\n"
              "    reqs = [re.split(r'[ ;<>=!~\\[(]', r, maxsplit=1)[0].lower().replace('_', '-')\n"
              "            for r in (d.requires or []) if 'extra ==' not in r]\n"
              "    out[d.metadata['Name'].lower().replace('_', '-')] = {'requires': reqs,\n"
              "        'files': [str(d.locate_file(f)) for f in (d.files or [])]}\n"
              "print(json.dumps(out))")
    result = subprocess.run([str(venv / "bin" / "python"), "-c", script], check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def reachable(roots, dists: dict[str, dict]) -> set[str]:
    found, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in dists and name not in found:
            found.add(name)
            todo += dists[name]["requires"]
    return found


def only_brought_by(root: str, dists: dict[str, dict]) -> set[str]:
    """``root`` and what it requires that no other top-level distribution (one nothing
    requires: mlpcodegen's extras are not counted as requirements) needs."""
    required = {req for dist in dists.values() for req in dist["requires"]}
    others = [name for name in dists if name not in required and name != root]
    return reachable([root], dists) - reachable(others, dists)


def dist_bytes(names: set[str], dists: dict[str, dict]) -> int:
    total = 0
    for name in names:
        for file in dists[name]["files"]:
            path = Path(file)
            if path.is_file():
                total += path.stat().st_size
    return total


def report(venv: Path, made_here: bool) -> str:
    total = folder_bytes(venv)
    dists = installed(venv)
    docs = only_brought_by("mkdocs", dists)
    docs_bytes = dist_bytes(docs, dists)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    how = "a venv this script made" if made_here else f"a venv made by the same command ({venv})"
    return "\n".join([
        "# What the install weighs",
        "",
        f"`python bench/install_size.py` ({stamp}; {how}, Python {sys.version.split()[0]}): "
        "`python -m venv v && v/bin/pip install -e \".[all]\"`, then `du -sb v`.",
        "",
        "| what | bytes | GB | GiB |",
        "|---|---|---|---|",
        f"| the venv with `[all]` | {total:,} | {total / 1e9:.2f} | {total / 2**30:.2f} |",
        f"| of which only the `docs` extra brings ({', '.join(sorted(docs))}) | {docs_bytes:,} | "
        f"{docs_bytes / 1e9:.3f} | {docs_bytes / 2**30:.3f} |",
        "",
        f"Limit: {LIMIT / 1e9:.0f} GB — {'within' if total <= LIMIT else 'OVER'}. "
        f"{len(dists)} distributions installed.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, help="measure this venv instead of making one")
    parser.add_argument("--out", type=Path, default=HERE / "INSTALL.md")
    args = parser.parse_args(argv)
    if args.venv:
        text = report(args.venv.resolve(), made_here=False)
    else:
        with tempfile.TemporaryDirectory() as folder:
            venv = Path(folder) / "v"
            make_venv(venv)
            text = report(venv, made_here=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
