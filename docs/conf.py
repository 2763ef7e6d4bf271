"""Sphinx configuration for reloadkit's documentation (``tox -e docs``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import reloadkit  # noqa: E402

project = "reloadkit"
author = "the reloadkit developers"
copyright = "reloadkit's developers"
release = version = reloadkit.__version__

extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"reloadkit {release}"

# Pages that other work writes into docs/ as it lands. index.rst names the known pages in
# reading order and ends its toctree with a glob for every other page. Sphinx warns (and so
# fails, warnings being errors) on an entry whose page does not exist and on a glob that
# matches nothing, so the toctree is trimmed to what is there: a page in progress is left out
# until it lands, and the glob until some page is not named.
PAGES_IN_PROGRESS = frozenset({
    "benchmarks", "browser", "configuration", "ignore-and-mounts", "warm", "wrappers",
})
_ENTRY = re.compile(r"^ {3}(\S+)[ \t]*$", re.M)


def _trim_index_toctree(app: Any, docname: str, source: list[str]) -> None:
    if docname != "index":
        return
    pages = {path.stem for path in HERE.glob("*.rst")} - {"index"}
    named = set(_ENTRY.findall(source[0]))

    def keep(match: re.Match[str]) -> str:
        entry = match.group(1)
        if entry in PAGES_IN_PROGRESS and entry not in pages:
            return ""
        if entry == "*" and pages <= named:
            return ""
        return match.group(0)

    source[0] = _ENTRY.sub(keep, source[0])


def setup(app: Any) -> None:
    app.connect("source-read", _trim_index_toctree)
