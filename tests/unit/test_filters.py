"""Glob translation and the include/exclude/ignore rules, as tables (no I/O)."""

from __future__ import annotations

import dataclasses

import pytest

from reloadkit.errors import ConfigError
from reloadkit.watch.filters import (
    DEFAULT_INCLUDES,
    IGNORED_DIRS,
    IGNORED_FILES,
    FilterRules,
    glob_to_regex,
    parse_ext,
)

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        # * and ? never cross "/"
        ("*.py", "a.py", True),
        ("*.py", ".py", True),
        ("*.py", "a.pyc", False),
        ("*.py", "x/a.py", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("a*c", "a/c", False),
        ("a*c", "abbbc", True),
        # ** as a segment: zero or more directories
        ("**/*.py", "a.py", True),
        ("**/*.py", "x/a.py", True),
        ("**/*.py", "x/y/z/a.py", True),
        ("**/*.py", "x/a.txt", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/xb", False),
        ("a/**/b", "ab", False),
        ("a/**", "a/x", True),
        ("a/**", "a/x/y", True),
        ("a/**", "a", False),
        ("a/**", "ab/x", False),
        ("**", "anything/at/all", True),
        ("a/**/**/b", "a/b", True),
        ("a/**/**/b", "a/x/y/b", True),
        ("**/x/**", "x/y", True),
        ("**/x/**", "p/q/x/y/z", True),
        ("**/x/**", "p/xx/y", False),
        # ** inside a segment is just *
        ("a**b", "axxb", True),
        ("a**b", "ax/xb", False),
        # a path pattern is anchored at the root (leading "/" changes nothing here)
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "lib/src/a.py", False),
        ("src/*.py", "src/x/a.py", False),
        ("/src/*.py", "src/a.py", True),
        # character classes
        ("[ab].py", "a.py", True),
        ("[ab].py", "c.py", False),
        ("[!ab].py", "c.py", True),
        ("[!ab].py", "a.py", False),
        ("[a-c]x", "bx", True),
        ("[a-c]x", "dx", False),
        ("[-a]x", "-x", True),
        ("[]]x", "]x", True),
        ("[!/]", "/", False),
        ("[x", "[x", True),  # no closing bracket: literal
        # regex metacharacters are literal; backslash escapes
        ("a+b(c).py", "a+b(c).py", True),
        ("a.py", "aXpy", False),
        ("\\*.py", "*.py", True),
        ("\\*.py", "a.py", False),
        ("^$|.py", "^$|.py", True),
        # directory-only trailing slash is dropped by the translation
        ("build/", "build", True),
    ],
)
def test_glob_to_regex(pattern: str, path: str, expected: bool) -> None:
    assert (glob_to_regex(pattern).match(path) is not None) is expected


@pytest.mark.parametrize("pattern", ["", "/", "//"])
def test_glob_to_regex_rejects_empty(pattern: str) -> None:
    with pytest.raises(ConfigError):
        glob_to_regex(pattern)


def test_default_lists() -> None:
    assert DEFAULT_INCLUDES == (
        "*.py", "*.pyi", "*.toml", "*.ini", "*.cfg", "*.yaml", "*.yml", "*.json", "*.html", "*.jinja", "*.j2", ".env",
    )  # fmt: skip
    for name in ("node_modules", ".git", "__pycache__", ".venv", "venv", "*.egg-info", "build", "dist", ".tox"):
        assert name in IGNORED_DIRS
    for name in ("*.pyc", "*.swp", "*~", ".#*", "*.log", "*-journal", "*-wal", "*-shm"):
        assert name in IGNORED_FILES


DEFAULT = FilterRules()


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("app.py", True),
        ("pkg/mod.py", True),
        ("pkg/mod.pyi", True),
        ("pyproject.toml", True),
        ("setup.cfg", True),
        ("tox.ini", True),
        ("conf/app.yaml", True),
        ("conf/app.yml", True),
        ("data.json", True),
        ("templates/index.html", True),
        ("templates/base.jinja", True),
        ("templates/base.j2", True),
        (".env", True),
        ("sub/.env", True),
        ("./app.py", True),
        ("/app.py", True),
        # not included
        ("README.md", False),
        ("notes.txt", False),
        ("style.css", False),
        (".env.local", False),
        ("app.py.tmp", False),
        ("4913", False),  # vim's write test file
        # ignored files
        ("app.pyc", False),
        ("app.pyo", False),
        ("app.py~", False),
        (".#app.py", False),
        (".app.py.swp", False),
        (".app.py.swx", False),
        ("server.log", False),
        ("db.sqlite3-journal", False),
        ("db.sqlite3-wal", False),
        ("db.sqlite3-shm", False),
        # inside ignored directories, at any depth
        ("node_modules/pkg/index.py", False),
        ("web/node_modules/x.json", False),
        (".git/config.json", False),
        ("pkg/__pycache__/mod.py", False),
        (".venv/lib/site.py", False),
        ("venv/lib/site.py", False),
        ("build/lib/app.py", False),
        ("dist/app.py", False),
        ("src/reloadkit.egg-info/x.json", False),
        (".tox/py312/x.py", False),
        (".mypy_cache/x.json", False),
        # near misses of ignored directories are watched
        ("venvs/x.py", True),
        ("builder/x.py", True),
        ("my_node_modules/x.py", True),
        ("git/x.py", True),
        # the root itself is not a file
        ("", False),
    ],
)
def test_default_rules_files(relpath: str, expected: bool) -> None:
    assert DEFAULT.file_matches(relpath) is expected


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("", False),
        (".", False),
        ("pkg", False),
        ("pkg/sub", False),
        ("node_modules", True),
        ("node_modules/pkg", True),
        ("web/node_modules", True),
        (".git", True),
        (".git/objects", True),
        ("__pycache__", True),
        ("pkg/__pycache__", True),
        ("foo.egg-info", True),
        (".venv", True),
        ("build", True),
        ("pkg/build", True),
        ("buildings", False),
        (".hypothesis", True),
        (".ruff_cache", True),
    ],
)
def test_default_rules_dirs(relpath: str, expected: bool) -> None:
    assert DEFAULT.dir_ignored(relpath) is expected


def test_parents_checked_judges_only_the_leaf() -> None:
    # a walker that prunes as it goes only asks about the last component
    assert DEFAULT.dir_ignored("node_modules/pkg", parents_checked=True) is False
    assert DEFAULT.dir_ignored("pkg/node_modules", parents_checked=True) is True
    assert DEFAULT.file_matches("node_modules/a.py", parents_checked=True) is True
    assert DEFAULT.file_matches("node_modules/a.py") is False


@pytest.mark.parametrize(
    ("options", "relpath", "expected"),
    [
        # --include and --ext ADD to the defaults
        ({"include": ["*.txt"]}, "notes.txt", True),
        ({"include": ["*.txt"]}, "app.py", True),
        ({"ext": ["txt"]}, "a/notes.txt", True),
        ({"ext": ["md,rst"]}, "README.md", True),
        ({"ext": ["md,rst"]}, "docs/index.rst", True),
        ({"ext": ["md,rst"]}, "app.py", True),
        # --exclude wins over includes, default or user's
        ({"exclude": ["settings_local.py"]}, "settings_local.py", False),
        ({"exclude": ["settings_local.py"]}, "conf/settings_local.py", False),
        ({"exclude": ["*.txt"], "include": ["*.txt"]}, "a.txt", False),
        ({"exclude": ["*_test.py"]}, "pkg/a_test.py", False),
        ({"exclude": ["*_test.py"]}, "pkg/a.py", True),
        # a pattern with "/" is anchored at the root
        ({"exclude": ["migrations/*.py"]}, "migrations/0001.py", False),
        ({"exclude": ["migrations/*.py"]}, "app/migrations/0001.py", True),
        ({"exclude": ["**/migrations/*.py"]}, "app/migrations/0001.py", False),
        ({"exclude": ["**/migrations/*.py"]}, "migrations/0001.py", False),
        ({"exclude": ["/top.py"]}, "top.py", False),
        ({"exclude": ["/top.py"]}, "sub/top.py", True),
        # excluding a directory, all the ways
        ({"exclude": ["data/**"]}, "data/a.py", False),
        ({"exclude": ["data/**"]}, "data/x/y/a.py", False),
        ({"exclude": ["data/**"]}, "sub/data/a.py", True),
        ({"exclude": ["data"]}, "data/a.py", False),
        ({"exclude": ["data"]}, "sub/data/a.py", False),
        ({"exclude": ["data/"]}, "sub/data/x/a.py", False),
        ({"exclude": ["data/"]}, "data.py", True),
        ({"exclude": ["**/data/**"]}, "x/data/a.py", False),
        ({"exclude": ["tests/**/*.py"]}, "tests/a/b/test_x.py", False),
        ({"exclude": ["tests/**/*.py"]}, "tests/conftest.py", False),
        ({"exclude": ["tests/**/*.py"]}, "tests/data.json", True),
        # ** in includes
        ({"include": ["assets/**/*.txt"]}, "assets/a.txt", True),
        ({"include": ["assets/**/*.txt"]}, "assets/x/y/a.txt", True),
        ({"include": ["assets/**/*.txt"]}, "other/a.txt", False),
        ({"include": ["assets/**/*.txt"]}, "lib/assets/a.txt", False),
        ({"include": ["**/assets/*.txt"]}, "lib/assets/a.txt", True),
        ({"include": ["templates/**"]}, "templates/a/b.anything", True),
        # a directory-only include takes every file below such a directory
        ({"include": ["templates/"]}, "web/templates/x/page.tpl", True),
        ({"include": ["templates/"]}, "web/page.tpl", False),
        # built-in ignores win over includes
        ({"include": ["*"]}, "anything.txt", True),
        ({"include": ["*"]}, ".a.py.swp", False),
        ({"include": ["*"]}, ".git/HEAD", False),
        ({"include": ["*.log"]}, "server.log", False),
        ({"include": ["node_modules/**"]}, "node_modules/a.js", False),
    ],
)
def test_build_rules(options: dict[str, list[str]], relpath: str, expected: bool) -> None:
    assert FilterRules.build(**options).file_matches(relpath) is expected


@pytest.mark.parametrize(
    ("exclude", "relpath", "expected"),
    [
        ("data/**", "data", True),
        ("data/**", "sub/data", False),
        ("data/**", "data/x", True),
        ("data", "data", True),
        ("data", "a/b/data", True),
        ("data/", "data", True),
        ("/data", "data", True),
        ("/data", "a/data", False),
        ("**/data/**", "a/b/data", True),
        ("a/b", "a/b", True),
        ("a/b", "a", False),
        ("a/*/c", "a/b/c", True),
        ("*.py", "pkg", False),
        ("tests/**/*.py", "tests", False),  # files below it still excluded, the dir still watched
    ],
)
def test_excluded_directories_are_not_watched(exclude: str, relpath: str, expected: bool) -> None:
    assert FilterRules.build(exclude=[exclude]).dir_ignored(relpath) is expected


def test_build_merges_and_dedupes() -> None:
    rules = FilterRules.build(include=["*.py", "*.txt"], exclude=["x", "x"], ext=["txt, .md", "*.rst"])
    assert rules.includes == (*DEFAULT_INCLUDES, "*.txt", "*.md", "*.rst")
    assert rules.excludes == ("x",)
    assert rules.ignored_dirs == IGNORED_DIRS
    assert rules.ignored_files == IGNORED_FILES


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["py,txt"], ("*.py", "*.txt")),
        ([" py , .txt ,*.md"], ("*.py", "*.txt", "*.md")),
        (["py", "py"], ("*.py",)),
        (["tar.gz"], ("*.tar.gz",)),
        ([","], ()),
        ([], ()),
    ],
)
def test_parse_ext(values: list[str], expected: tuple[str, ...]) -> None:
    assert parse_ext(values) == expected


@pytest.mark.parametrize("value", ["a/b", "*", "p?", "."])
def test_parse_ext_rejects(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_ext([value])


@pytest.mark.parametrize("options", [{"include": [""]}, {"exclude": ["/"]}, {"ext": ["x/y"]}])
def test_build_rejects_bad_patterns(options: dict[str, list[str]]) -> None:
    with pytest.raises(ConfigError):
        FilterRules.build(**options)


def test_rules_are_frozen_hashable_and_accept_lists() -> None:
    rules = FilterRules(includes=["*.py"], excludes=["x"])  # type: ignore[arg-type]
    assert rules.includes == ("*.py",)
    assert rules == FilterRules(includes=("*.py",), excludes=("x",))
    assert hash(rules) == hash(FilterRules(includes=("*.py",), excludes=("x",)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.excludes = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        FilterRules(includes="*.py")  # type: ignore[arg-type]


def test_custom_ignore_lists() -> None:
    # the programmatic escape hatch: a project whose real package is called "build"
    rules = dataclasses.replace(FilterRules(), ignored_dirs=tuple(d for d in IGNORED_DIRS if d != "build"))
    assert rules.file_matches("build/app.py")
    assert not rules.file_matches("node_modules/app.py")
