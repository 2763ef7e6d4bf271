"""Every long option of ``reloadkit run`` is documented in docs/*.rst.

The options come from the argparse parser itself (not a copy), so a new option without a
word in the docs fails here.
"""

from __future__ import annotations

import argparse
import configparser
import re
from pathlib import Path

from reloadkit.cli import _build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: An inline literal that starts with the option: ``--bind``, ``--bind SPEC``, ``--poll=2``.
_LITERAL = re.compile(r"``(--[a-z0-9][a-z0-9-]*)(?=[ =\[`])")
#: Sphinx's option directive: ``.. option:: -b SPEC, --bind SPEC``.
_DIRECTIVE = re.compile(r"^\s*\.\. option::(.*)$", re.M)
_OPTION = re.compile(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)")


def run_options() -> set[str]:
    """The long options of the ``run`` subcommand, as ``reloadkit run --help`` shows them."""
    parser = _build_parser()
    subcommands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    run = subcommands.choices["run"]
    return {
        option
        for action in run._actions
        if action.help != argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--")
    }


def documented_options(text: str) -> set[str]:
    found = set(_LITERAL.findall(text))
    for line in _DIRECTIVE.findall(text):
        found.update(_OPTION.findall(line))
    return found


def test_the_parser_yields_the_run_options() -> None:
    options = run_options()
    assert {"--bind", "--watch", "--no-reload", "--help"} <= options


def test_documented_options_are_found_in_literals_and_directives() -> None:
    text = "Use ``--bind SPEC`` or ``--poll``.\n\n.. option:: -w PATH, --watch PATH\n\nnot --quiet, ``-q --verbose``\n"
    assert documented_options(text) == {"--bind", "--poll", "--watch"}


def test_every_run_option_is_in_the_docs() -> None:
    pages = sorted(DOCS.glob("*.rst"))
    assert pages, f"no .rst files in {DOCS}"
    documented = set().union(*(documented_options(page.read_text(encoding="utf-8")) for page in pages))
    missing = sorted(run_options() - documented)
    assert not missing, f"options of `reloadkit run --help` not documented (as ``--option``) in docs/*.rst: {', '.join(missing)}"


def test_every_public_name_is_in_the_api_page() -> None:
    import reloadkit

    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    directive = re.compile(r"^\.\. (?:autofunction|autoexception|autoclass|autodata|data|function|exception|class):: (\w+)", re.M)
    documented = set(directive.findall(text))
    missing = sorted(set(reloadkit.__all__) - documented)
    assert not missing, f"names in reloadkit.__all__ missing from docs/api.rst: {', '.join(missing)}"


def test_every_name_of_reloadkit_middleware_is_in_the_api_page() -> None:
    from reloadkit import middleware

    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    section = text[text.index(".. module:: reloadkit.middleware"):]
    documented = set(re.findall(r"^\.\. (?:autofunction|autoclass):: (\w+)", section, re.M))
    assert documented == set(middleware.__all__)


def test_every_reloadkit_variable_is_in_the_docs() -> None:
    """Each ``RELOADKIT_*`` name in the package's source, read or set, is documented."""
    package = DOCS.parent / "reloadkit"
    names = {
        name
        for path in package.rglob("*.py")
        for name in re.findall(r"\bRELOADKIT_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8"))
    }
    assert "RELOADKIT_POLL" in names
    text = "\n".join(page.read_text(encoding="utf-8") for page in DOCS.glob("*.rst"))
    missing = sorted(name for name in names if not re.search(rf"``{name}(?![A-Z0-9_])", text))
    assert not missing, f"RELOADKIT_* names in reloadkit/ missing from docs/*.rst: {', '.join(missing)}"


def _source_url() -> str:
    """The repository's address: the ``Source`` project URL of setup.cfg (the index shows it)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(DOCS.parent / "setup.cfg", encoding="utf-8")
    lines = parser.get("metadata", "project_urls").strip().splitlines()
    urls = {name.strip(): url.strip() for name, url in (line.split("=", 1) for line in lines)}
    return urls["Source"]


def test_the_readme_links_the_repository_s_files_by_absolute_address() -> None:
    """README.rst is the package index's page, where a relative link or image is broken: every
    target is absolute, and one into this repository names a file that exists, under the
    ``Source`` URL of the metadata."""
    source = _source_url()
    text = (DOCS.parent / "README.rst").read_text(encoding="utf-8")
    targets = re.findall(r"`[^`<]*<([^>]+)>`_", text) + re.findall(r"^\.\. (?:image|figure):: (\S+)", text, re.M)
    assert len(targets) > 10
    relative = [target for target in targets if "://" not in target]
    assert not relative, f"relative links in README.rst: {relative}"
    for target in targets:
        if target.startswith(source):
            match = re.fullmatch(re.escape(source) + r"/(?:blob|raw|tree)/main/(.+)", target)
            assert match, f"{target}: expected {source}/blob|raw|tree/main/PATH"
            assert (DOCS.parent / match.group(1)).exists(), f"{target}: no {match.group(1)} in the repository"
        else:
            assert "github.com" not in target, f"{target}: not under the Source URL {source}"
