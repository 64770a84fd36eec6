"""The README and docs/ stay short and true.

* The site builds with ``mkdocs build --strict`` (a broken link, a missing page or anchor
  fails it; shown to fail on a planted broken link), and carries bench/*.md as pages.
* Every command on a ``$`` line of a ``console`` block runs (exit 0), page by page in a fresh
  folder holding a copy of generated/seed; ``pycon`` blocks run as doctests.
* Every ``mlpcodegen`` option shown anywhere exists in that command's ``--help``.
* The README: at most 300 lines; its links exist; it links every docs page; its two set-up
  commands are the ones .ci/run runs; its targets table is the backends' registry; its
  layout names every frontend and backend module.
* docs/install.md's extras are pyproject's; docs/benchmarks.md lists every bench page with the
  script that wrote it.
"""
from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tomllib
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import REPO
from toolchains import TOOLS, require

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
SHOWN = [README, *PAGES]
#: How long one shown command may take (they take a few seconds; a hang must not stall the suite).
COMMAND_TIMEOUT = 120

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```\s*$", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
NEEDS = re.compile(r"#\s*needs:\s*(?P<tools>[\w.+ -]+)$")


def blocks(path: Path, info: str | None = None) -> list[tuple[str, str]]:
    """(info string, body) of each fenced block of ``path`` (those of kind ``info`` when given)."""
    found = [(m["info"].strip(), m["body"]) for m in FENCE.finditer(path.read_text(encoding="utf-8"))]
    return [(kind, body) for kind, body in found if info is None or kind == info]


def shown_commands(path: Path) -> list[str]:
    """The ``$`` lines of ``path``'s console blocks, continuation lines joined."""
    commands = []
    for _, body in blocks(path, "console"):
        current = None
        for line in body.splitlines():
            if line.startswith("$ "):
                current = line[2:]
                commands.append(current)
            elif current is not None and commands[-1].endswith("\\"):
                commands[-1] = commands[-1][:-1] + " " + line.strip()
    return commands


def run_in(folder: Path, command: str) -> subprocess.CompletedProcess:
    """``command`` in bash in ``folder``, ``mlpcodegen`` and ``python`` being this checkout's."""
    tools = folder / ".bin"
    if not tools.exists():
        tools.mkdir()
        wrapper = tools / "mlpcodegen"
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m mlpcodegen "$@"\n')
        wrapper.chmod(0o755)
        (tools / "python").symlink_to(sys.executable)
    env = dict(os.environ, PATH=f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               MPLBACKEND="Agg")
    return subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)


def tools_needed(command: str) -> list[str]:
    """The tools of the table in tests/toolchains.py a command runs: the first word of each
    part of a pipeline or list, and those a ``# needs:`` comment names."""
    words = [part.split()[0] for part in re.split(r"&&|\|\||[|;]", command.split("#")[0]) if part.split()]
    needs = NEEDS.search(command)
    named = needs["tools"].split() if needs else []
    return [tool for tool in dict.fromkeys(words + named) if tool in TOOLS]


def workspace(tmp_path: Path) -> Path:
    """A folder holding a copy of the bundled seed model, as the shown commands expect."""
    shutil.copytree(REPO / "generated" / "seed", tmp_path / "generated" / "seed",
                    ignore=shutil.ignore_patterns("*.png"))
    return tmp_path


# --------------------------------------------------------------------------- the site


def build_site(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
                           "-d", str(site)], capture_output=True, text=True, timeout=300)


def test_the_site_builds_strictly_with_the_bench_pages(tmp_path):
    result = build_site(REPO / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    for page in PAGES:
        assert (tmp_path / "site" / page.stem / "index.html").is_file() or page.stem == "index", page
    for table in (REPO / "bench").glob("*.md"):
        assert (tmp_path / "site" / "bench" / table.stem / "index.html").is_file(), table
    assert (tmp_path / "site" / "bench" / "RESULTS.png").is_file()  # the picture RESULTS.md shows


def test_a_broken_link_fails_the_build(tmp_path):
    """Strictness is real: the same site with one link to a missing page does not build."""
    for part in ("docs", "bench"):
        shutil.copytree(REPO / part, tmp_path / part)
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "usage.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nSee [the missing page](missing.md).\n", encoding="utf-8")
    result = build_site(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "missing.md" in result.stdout + result.stderr


def test_every_bench_page_is_in_the_nav_and_listed_with_its_script():
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    listing = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    tables = sorted((REPO / "bench").glob("*.md"))
    assert tables
    for table in tables:
        assert f"- bench/{table.name}" in nav, table
        row = next((line for line in listing.splitlines() if f"(../bench/{table.name})" in line), None)
        assert row is not None, f"docs/benchmarks.md does not list {table.name}"
        scripts = re.findall(r"`(?:python )?bench/([\w/]+\.py)`", row)
        assert scripts, row
        for script in scripts:
            assert (REPO / "bench" / script).is_file(), script
        assert scripts[0].split("/")[-1] in table.read_text(encoding="utf-8"), \
            f"{table.name} does not say it is written by {scripts[0]}"


def test_no_page_claims_every_target_writes_everything():
    """q15 and int8 take 7 activations, the languages refuse what needs libm's log or erf:
    docs/supported.md's matrix says which (found by asking each target)."""
    for page in SHOWN:
        assert "works in every target" not in page.read_text(encoding="utf-8"), page.name
    assert "## Which target writes which activation" in (DOCS / "supported.md").read_text(encoding="utf-8")


def test_the_supported_tables_are_true_and_take_the_frontends_from_their_registry():
    """app/support.py wrote "every activation and layer below works in every target" (q15 and
    int8 take 7; the languages lack some), which regenerate.py had to rewrite; and it named the
    ONNX, scikit-learn and PyTorch frontends itself.  Now each format's details come from
    ``FORMATS``, and the text points to the matrix."""
    import ast

    from mlpcodegen.app import support
    from mlpcodegen.frontends import FORMATS

    text = support.supported_markdown()
    assert "every target" not in text and "the matrix at the end of this page" in text
    details = [fmt.details() for fmt in FORMATS if fmt.details is not None]
    assert len(details) >= 3 and all(f"* {line}" in text for line in details)
    tree = ast.parse(Path(support.__file__).read_text(encoding="utf-8"))
    imported = {f"{node.module}.{alias.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert not {f"frontends.{name}" for name in ("onnx", "sklearn", "torch", "tflite")} & imported, imported
    assert not hasattr(support, "update_readme")


def test_every_page_is_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    for page in PAGES:
        assert re.search(rf"(?m)^\s*- (?:[^:\n]+: )?{re.escape(page.name)}\s*$", nav), page.name


# --------------------------------------------------------------------------- commands and examples


@pytest.mark.parametrize("page", [p for p in SHOWN if shown_commands(p)], ids=lambda p: p.name)
def test_shown_commands_run(page, tmp_path):
    folder = workspace(tmp_path)
    for command in shown_commands(page):
        tools = tools_needed(command)
        if tools:
            require(*tools)
        result = run_in(folder, command)
        assert result.returncode == 0, f"{page.name}: $ {command}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"


@pytest.mark.parametrize("page", [p for p in SHOWN if blocks(p, "pycon")], ids=lambda p: p.name)
def test_pycon_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(workspace(tmp_path))
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for number, (_, body) in enumerate(blocks(page, "pycon")):
        test = parser.get_doctest(body, {}, f"{page.name}[{number}]", str(page), 0)
        assert test.examples, f"{page.name}: an empty pycon block"
        runner.run(test)
    assert runner.failures == 0, f"{page.name}: {runner.failures} pycon example(s) failed (printed above)"


@lru_cache(maxsize=None)
def help_text(command: str = "") -> str:
    """``mlpcodegen COMMAND --help``, run in this process as ``python -m mlpcodegen`` runs it."""
    out, argv = io.StringIO(), sys.argv
    sys.argv = ["mlpcodegen", *command.split(), "--help"]
    try:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit:
            runpy.run_module("mlpcodegen", run_name="__main__", alter_sys=False)
    finally:
        sys.argv = argv
    assert exit.value.code == 0, out.getvalue()
    return out.getvalue()


def subcommands() -> list[str]:
    listing = help_text().split("COMMAND", 2)[-1]
    return re.findall(r"(?m)^    (\w+)\s", listing)


def option_uses(path: Path) -> list[tuple[str, str]]:
    """(subcommand, text) of every ``mlpcodegen SUBCOMMAND ...`` shown in ``path``: code lines,
    code spans, and the README's table of commands (rows starting with the subcommand)."""
    text = path.read_text(encoding="utf-8")
    names = set(subcommands())
    uses = []
    for _, body in blocks(path):
        for line in body.splitlines():
            match = re.match(r"(?:\$ )?mlpcodegen (\w+)(.*)", line.strip())
            if match and match[1] in names:
                uses.append((match[1], match[2].split("#")[0]))
    for span in re.findall(r"`([^`\n]+)`", text):
        match = re.match(r"(?:mlpcodegen )?(\w+) (.*)", span)
        if match and match[1] in names and (span.startswith("mlpcodegen ") or re.search(r"\| `" + re.escape(span), text)):
            uses.append((match[1], match[2]))
    return uses


@pytest.mark.parametrize("page", SHOWN, ids=lambda p: p.name)
def test_every_option_shown_exists(page):
    for command, text in option_uses(page):
        known = set(OPTION.findall(help_text(command)))
        unknown = set(OPTION.findall(text)) - known
        assert not unknown, f"{page.name}: mlpcodegen {command} has no {sorted(unknown)}: {text}"


def test_the_readme_shows_every_command():
    text = README.read_text(encoding="utf-8")
    assert len(option_uses(README)) >= len(subcommands()) + 5  # the table's rows and the $ lines are found
    for command in subcommands():
        assert re.search(rf"(?m)^\| `{command}\b", text), f"the README's table of commands lacks {command}"


# --------------------------------------------------------------------------- the README


def test_the_readme_is_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 300


def test_links_out_of_docs_exist_in_the_repository():
    """``../bench/X.md`` is where the page is in the repository (the hook maps it into the site)."""
    for page in PAGES:
        for link in LINK.findall(page.read_text(encoding="utf-8")):
            if link.startswith("../"):
                assert (page.parent / link.split("#")[0]).resolve().is_file(), f"{page.name}: {link}"


def test_the_readme_links_exist_and_reach_every_page():
    text = README.read_text(encoding="utf-8")
    targets = {link.split("#")[0] for link in LINK.findall(text) if "://" not in link}
    for target in targets:
        assert (REPO / target).exists(), f"README links to {target}, which does not exist"
    for page in PAGES:
        assert f"docs/{page.name}" in targets, f"the README does not link docs/{page.name}"


def test_the_setup_commands_are_what_ci_runs():
    """The README's set-up block is two commands, and .ci/run runs each as it is written."""
    setup = README.read_text(encoding="utf-8").split("## Set-up", 1)[1]
    body = FENCE.search(setup)["body"]
    commands = [line for line in body.splitlines() if line.strip()]
    assert len(commands) == 2 and "pip install" in commands[0] and "pytest" in commands[1], commands
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    for command in commands:
        assert command in ci, f".ci/run does not run the README's {command!r}"
    assert ci[-1] == commands[1] or ci.index(commands[1]) > ci.index(commands[0])


def test_the_targets_table_is_the_registry():
    from mlpcodegen.backends import BACKENDS

    section = README.read_text(encoding="utf-8").split("## Targets", 1)[1].split("\n## ", 1)[0]
    rows = {m[1]: m[2] for m in re.finditer(r"(?m)^\| `(\w+)` \|.*\| ([\w, ]+) \|$", section)}
    assert list(rows) == list(BACKENDS)
    for target, dtypes in rows.items():
        assert dtypes.split(", ") == list(BACKENDS[target].supported), target


def test_the_layout_names_every_module_it_should():
    from mlpcodegen.backends import BACKENDS
    from mlpcodegen.frontends import FORMATS

    layout = README.read_text(encoding="utf-8").split("## Layout", 1)[1]
    block = FENCE.search(layout)["body"]
    for fmt in FORMATS:
        stem = fmt.module.rsplit('.', 1)[-1]
        assert f"{stem}.py" in block or f"{stem}/" in block, fmt.name
    for target in BACKENDS:
        assert f"{target}.py" in block, target
    package = {path.name for path in (REPO / "mlpcodegen").rglob("*.py")}
    inside = re.split(r"(?m)^(?!mlpcodegen/)\w", block, maxsplit=1)[0]  # the package's part
    for module in re.findall(r"\b(\w+\.py)\b", inside):
        assert module in package, f"the layout names {module}, which is not in the package"
    folders = re.findall(r"(?m)^  (\w+)/", block)
    missing = [folder for folder in folders if not (REPO / "mlpcodegen" / folder).is_dir()]
    for top in re.findall(r"(?m)^(\w+)/", block):
        assert (REPO / top).is_dir(), top
    assert not missing
    for package in re.findall(r"\b(\w+)/ \(a package\)", inside):
        assert any((REPO / "mlpcodegen" / d / package / "__init__.py").is_file() for d in folders), package


# --------------------------------------------------------------------------- docs/install.md


def test_the_extras_table_is_pyproject():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    table = {m[1]: m[2] for m in re.finditer(r"(?m)^\| `(\w+)` \| ([^|]+) \|", (DOCS / "install.md").read_text())}
    optional = {name: deps for name, deps in extras["optional-dependencies"].items() if name != "all"}
    assert set(table) == set(optional)
    for name, deps in [*optional.items(), ("(none)", extras["dependencies"])]:
        for dep in deps:
            package = re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0]
            cell = table.get(name) or re.search(r"(?m)^\| \(none\) \| ([^|]+) \|", (DOCS / "install.md").read_text())[1]
            assert package in cell, f"docs/install.md: extra {name} lacks {package}"
