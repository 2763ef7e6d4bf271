"""Which paths count as a change, and which directories are never looked into.

Pure logic, no I/O, so every backend (inotify, watchdog, polling) applies exactly the same
rules and the rules can be tested as tables. watchdog's own pattern matching is not used:
since watchdog 7 its ``PatternMatchingEventHandler`` matches against the whole path, which
changed the meaning of ``*.py``-style patterns under the feet of its users.

Glob syntax (the same everywhere):

* ``*`` matches any run of characters except ``/``; ``?`` one character except ``/``;
  ``[abc]``, ``[a-z]``, ``[!abc]`` a character class; ``\\`` escapes the next character.
* ``**`` as a whole path segment: ``**/`` is zero or more directories, a final ``/**`` is
  everything below. ``**`` inside a segment (``a**b``) is the same as ``*``.
* A pattern without ``/`` is matched against the basename, at any depth; a pattern with
  ``/`` against the whole path relative to the watch root (so ``/build`` is only the
  top-level ``build``). A trailing ``/`` makes the pattern match directories only (and does
  not by itself make it a path pattern).

Rules (see :class:`FilterRules`): a file counts when it matches an include, matches neither an
exclude nor an ignored-file pattern, and no directory on its way from the root is ignored.
A directory is ignored (never watched, never walked) when it matches an ignored-dir pattern
or an exclude (an exclude that matches a directory takes everything below it, as in
``.gitignore``), or when an exclude ending in ``/**`` covers it (``data/**`` prunes ``data``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reloadkit.errors import ConfigError

__all__ = [
    "DEFAULT_INCLUDES",
    "IGNORED_DIRS",
    "IGNORED_FILES",
    "FilterRules",
    "glob_to_regex",
    "parse_ext",
]

#: Files whose change restarts the server when the user gives no ``--include``/``--ext``.
DEFAULT_INCLUDES: tuple[str, ...] = (
    "*.py",
    "*.pyi",
    "*.toml",
    "*.ini",
    "*.cfg",
    "*.yaml",
    "*.yml",
    "*.json",
    "*.html",
    "*.jinja",
    "*.j2",
    ".env",
)

#: Directories that are never watched nor walked: VCS data, caches, virtualenvs, build output.
IGNORED_DIRS: tuple[str, ...] = (
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".venv",
    "venv",
    "node_modules",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "build",
    "dist",
    "*.egg-info",
)

#: Files that never count: bytecode, editor swap/backup/lock files, logs, SQLite side files.
IGNORED_FILES: tuple[str, ...] = (
    "*.pyc",
    "*.pyo",
    "*~",
    ".#*",
    "*.swp",
    "*.swx",
    "*.log",
    "*-journal",
    "*-wal",
    "*-shm",
)

_ANY_DIRS = "(?:[^/]+/)*"  # what "**/" becomes: zero or more whole directories
_NEVER = re.compile(r"(?!)")  # matches nothing; stands for an empty pattern group


def _segment_regex(seg: str) -> str:
    """Translate one path segment (no ``/`` in it) of a glob."""
    out: list[str] = []
    i, n = 0, len(seg)
    while i < n:
        c = seg[i]
        if c == "*":
            while i < n and seg[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(seg[i]))
        elif c == "[":
            j = i + 1
            if j < n and seg[j] in "!^":
                j += 1
            if j < n and seg[j] == "]":
                j += 1
            while j < n and seg[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "["
                out.append(re.escape(c))
            else:
                body = seg[i + 1 : j]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                chars = [ch if ch == "-" and 0 < k < len(body) - 1 else re.escape(ch) for k, ch in enumerate(body)]
                out.append("[" + ("^/" if negate else "") + "".join(chars) + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _glob_body(pattern: str) -> str:
    """The regex (unanchored source) for a glob, ``/``-separated, ``**``-aware."""
    segs = [s for s in pattern.split("/") if s]
    if not segs:
        raise ConfigError(f"empty glob pattern: {pattern!r}")
    parts: list[str] = []
    last = len(segs) - 1
    for i, seg in enumerate(segs):
        if seg == "**":
            if i == last:
                parts.append(".+")
            elif not parts or parts[-1] != _ANY_DIRS:
                parts.append(_ANY_DIRS)
        else:
            parts.append(_segment_regex(seg) + ("" if i == last else "/"))
    return "".join(parts)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob into a regex anchored at both ends, for a ``/``-separated path.

    The caller decides what the regex is matched against (basename or root-relative path);
    a leading or trailing ``/`` is dropped here. Raises :class:`ConfigError` (a
    ``ValueError``) for an empty pattern.
    """
    return re.compile(r"\A(?:" + _glob_body(pattern) + r")\Z", re.DOTALL)


@dataclass(frozen=True)
class _Group:
    """A list of globs compiled into two alternations: basename-matched and path-matched."""

    by_name: re.Pattern[str]
    by_path: re.Pattern[str]
    empty: bool

    @classmethod
    def compile(cls, patterns: Iterable[str]) -> _Group:
        names: list[str] = []
        paths: list[str] = []
        for p in patterns:
            body = _glob_body(p)
            (paths if _anchored(p) else names).append(body)
        return cls(_alternation(names), _alternation(paths), not names and not paths)

    def hit(self, rel: str, name: str) -> bool:
        if self.empty:
            return False
        return self.by_name.match(name) is not None or self.by_path.match(rel) is not None


def _anchored(pattern: str) -> bool:
    """A ``/`` anywhere but at the end: matched against the root-relative path."""
    return "/" in pattern.rstrip("/")


def _alternation(bodies: Sequence[str]) -> re.Pattern[str]:
    if not bodies:
        return _NEVER
    return re.compile(r"\A(?:" + "|".join(f"(?:{b})" for b in bodies) + r")\Z", re.DOTALL)


def _split_dir_only(patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split into (patterns for files and dirs, patterns with a trailing ``/`` for dirs)."""
    both: list[str] = []
    dirs: list[str] = []
    for p in patterns:
        (dirs if p.endswith("/") else both).append(p)
    return both, dirs


def _subtree_prefixes(patterns: Iterable[str]) -> list[str]:
    """``data/**`` -> ``data/`` (path pattern): a directory that the pattern wholly covers."""
    out: list[str] = []
    for p in patterns:
        stripped = p.rstrip("/")
        if stripped.endswith("/**"):
            prefix = stripped[: -len("/**")]
            if prefix.strip("/"):
                # keep it a path pattern (anchored at the root) even if no "/" is left
                out.append(prefix if _anchored(prefix) else "/" + prefix)
    return out


def _norm(relpath: str) -> str:
    rel = relpath
    while rel.startswith("./"):
        rel = rel[2:]
    rel = rel.strip("/")
    return "" if rel == "." else rel


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def parse_ext(values: Sequence[str]) -> tuple[str, ...]:
    """``["py,txt", ".md"]`` -> ``("*.py", "*.txt", "*.md")``: the ``--ext`` shorthand."""
    out: list[str] = []
    for value in values:
        for raw in value.split(","):
            ext = raw.strip()
            if ext.startswith("*."):
                ext = ext[2:]
            ext = ext.lstrip(".")
            if not ext:
                if raw.strip():
                    raise ConfigError(f"--ext: not an extension: {raw.strip()!r}")
                continue
            if "/" in ext or any(c in ext for c in "*?["):
                raise ConfigError(f"--ext: not an extension: {raw.strip()!r} (use --include for globs)")
            out.append(f"*.{ext}")
    return _dedupe(out)


@dataclass(frozen=True)
class FilterRules:
    """The include/exclude/ignore rules, compiled once; all paths are root-relative, ``/``-separated.

    Precedence, strongest first: ignored dirs and excludes (by directory), ignored files,
    excludes (by file), includes. Built-in ignores therefore win over ``--include`` (so
    ``--include '*'`` does not make swap files or ``.git`` count); exact files given to a
    watcher's ``add_files`` bypass all of this.
    """

    includes: tuple[str, ...] = DEFAULT_INCLUDES
    excludes: tuple[str, ...] = ()
    ignored_dirs: tuple[str, ...] = IGNORED_DIRS
    ignored_files: tuple[str, ...] = IGNORED_FILES

    _inc: _Group = field(init=False, repr=False, compare=False)
    _inc_dirs: _Group = field(init=False, repr=False, compare=False)
    _exc_files: _Group = field(init=False, repr=False, compare=False)
    _ign_files: _Group = field(init=False, repr=False, compare=False)
    _ign_dirs: _Group = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Accept any sequence (a list from argparse) but stay hashable and immutable.
        for name in ("includes", "excludes", "ignored_dirs", "ignored_files"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"FilterRules.{name} must be a sequence of globs, not a string")
            object.__setattr__(self, name, tuple(value))
        inc_both, inc_dirs = _split_dir_only(self.includes)
        exc_both, _ = _split_dir_only(self.excludes)
        ign_both, _ = _split_dir_only(self.ignored_files)
        dir_patterns = [
            *self.ignored_dirs,
            *_subtree_prefixes(self.ignored_dirs),
            *self.excludes,
            *_subtree_prefixes(self.excludes),
        ]
        object.__setattr__(self, "_inc", _Group.compile(inc_both))
        object.__setattr__(self, "_inc_dirs", _Group.compile(inc_dirs))
        object.__setattr__(self, "_exc_files", _Group.compile(exc_both))
        object.__setattr__(self, "_ign_files", _Group.compile(ign_both))
        object.__setattr__(self, "_ign_dirs", _Group.compile(dir_patterns))

    @classmethod
    def build(
        cls,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        ext: Sequence[str] = (),
    ) -> FilterRules:
        """Merge the user's options with the defaults.

        ``--include`` and ``--ext`` ADD to :data:`DEFAULT_INCLUDES`; ``--exclude`` wins over
        any include; the built-in ignore lists stay. Raises :class:`ConfigError` for an
        unusable pattern.
        """
        for p in (*include, *exclude):
            if not p.strip("/"):
                raise ConfigError(f"empty glob pattern: {p!r}")
            glob_to_regex(p)
        return cls(
            includes=_dedupe((*DEFAULT_INCLUDES, *include, *parse_ext(ext))),
            excludes=_dedupe(exclude),
        )

    def dir_ignored(self, relpath: str, *, parents_checked: bool = False) -> bool:
        """Is this directory (root-relative) out of bounds, so never watched nor walked?

        With ``parents_checked=True`` only the last component is judged (walkers that
        prune as they go already know the parents are fine). The root itself (``""``) is
        never ignored.
        """
        rel = _norm(relpath)
        if not rel:
            return False
        if parents_checked:
            return self._ign_dirs.hit(rel, rel.rpartition("/")[2])
        return _any_prefix(self._ign_dirs, rel)

    def file_matches(self, relpath: str, *, parents_checked: bool = False) -> bool:
        """Would a change to this file (root-relative path) trigger a restart?"""
        rel = _norm(relpath)
        if not rel:
            return False
        parent, _, name = rel.rpartition("/")
        if parent and not parents_checked and self.dir_ignored(parent):
            return False
        if self._ign_files.hit(rel, name) or self._exc_files.hit(rel, name):
            return False
        if self._inc.hit(rel, name):
            return True
        # "templates/" as an include: every file below a directory that matches it
        return bool(parent) and not self._inc_dirs.empty and _any_prefix(self._inc_dirs, parent)


def _any_prefix(patterns: _Group, rel: str) -> bool:
    """Whether ``patterns`` match ``rel`` or one of its parent directories (``a``, ``a/b``, ...)."""
    start = 0
    while True:
        cut = rel.find("/", start)
        prefix = rel if cut < 0 else rel[:cut]
        if patterns.hit(prefix, prefix.rpartition("/")[2]):
            return True
        if cut < 0:
            return False
        start = cut + 1
