"""MkDocs hook: the measurement tables of bench/ become pages of the site, as they are.

The bench scripts write bench/*.md (and the pictures they show); the docs link to them as
``../bench/NAME.md``, which is where they are in the repository (so the links work when the
Markdown is read on its own).  This hook adds every bench/*.md and *.png to the site under
``bench/`` and points those links there, so nothing restates a table by hand and
``mkdocs build --strict`` fails on a link to a table that no script wrote.
No plugin is needed: MkDocs runs the hooks listed in mkdocs.yml (``hooks:``).
"""
from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

#: Kinds of bench/ files the site carries: the tables and the pictures they embed.
SUFFIXES = (".md", ".png")
#: A Markdown link or image target that goes up out of docs/ into bench/.
_UP_TO_BENCH = re.compile(r"\]\(\.\./bench/")


def bench_folder(config) -> Path:
    """bench/ beside docs/ (the repository's, whatever the working folder)."""
    return Path(config["docs_dir"]).resolve().parent / "bench"


def on_files(files, config):
    for path in sorted(bench_folder(config).iterdir()):
        if path.is_file() and path.suffix in SUFFIXES:
            files.append(File.generated(config, f"bench/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    """``../bench/X`` from a top-level page is ``bench/X`` inside the site."""
    if "/" in page.file.src_uri:  # pages in sub-folders (bench/ itself) link among themselves
        return markdown
    return _UP_TO_BENCH.sub("](bench/", markdown)
