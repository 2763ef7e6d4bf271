"""What git (and a ``.ignore`` file) says to leave alone: never a restart, never a watch.

The rules are git's, matched by ``pathspec`` (a maintained implementation of gitignore's
pattern syntax: ``**``, anchoring, directory-only patterns, negations), combined the way git
combines its files, from weakest to strongest:

1. the user's global excludes file (``$XDG_CONFIG_HOME/git/ignore``, by default
   ``~/.config/git/ignore``; a ``core.excludesFile`` set elsewhere is not read: that would take
   running ``git config``),
2. the repository's ``.git/info/exclude`` (the common one, for a worktree),
3. ``.gitignore`` in every directory from the repository's root down to the path's own,
   deeper files beating shallower ones,
4. ``.ignore`` files (ripgrep's and watchexec's convention, same syntax) in the same
   directories, each beating the ``.gitignore`` beside it.

The last pattern that matches decides (``!pattern`` re-includes). git's files count only
inside a git repository; outside one, ``.ignore`` files from the watched root down still do.
A directory that is ignored is never entered, so nothing below it can be re-included (as in
git). Compiled files and per-directory chains are cached; :meth:`IgnoreFiles.invalidate`
forgets them when an ignore file changes.

A watched root that the enclosing repository ignores (``projects/`` in its ``.gitignore``, a
dotfiles repository at ``$HOME`` ignoring ``*``) was named explicitly: it is watched, and the
rules start at it, as if it were the top of a repository of its own (the global excludes file
and the ignore files at and below it; not the enclosing repository's files above it, nor its
``info/exclude``, which are what ignored it). :meth:`IgnoreFiles.notes` says so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

import pathspec

__all__ = ["IGNORE_FILE_NAMES", "IgnoreFiles", "global_excludes_file"]

#: Per-directory ignore files, weakest first.
IGNORE_FILE_NAMES = (".gitignore", ".ignore")


def global_excludes_file(environ: dict[str, str] | None = None) -> str:
    """git's default global excludes file: ``$XDG_CONFIG_HOME/git/ignore``."""
    env = os.environ if environ is None else environ
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return os.path.join(config_home, "git", "ignore")


class _Spec:
    """The patterns of one ignore file, matched against paths relative to ``base``."""

    __slots__ = ("any", "base", "prefix", "regexes", "source")

    def __init__(self, base: str, lines: Iterable[str], source: str = "") -> None:
        self.base = base
        self.source = source  # the file the patterns came from
        self.prefix = base.rstrip(os.sep) + os.sep
        spec = pathspec.GitIgnoreSpec.from_lines(list(lines))
        # strongest (last) first; comments and blank lines have include None. The compiled
        # regex of each pattern (a public attribute of pathspec's RegexPattern) is used
        # directly: this runs for every entry of every walked directory.
        self.regexes = [(_exact(p.regex, str(p.pattern)), bool(p.include)) for p in reversed(spec.patterns)
                        if p.include is not None and p.regex is not None]
        self.any = _any_of([regex for regex, _ in self.regexes])

    def decide(self, path: str, is_dir: bool) -> bool | None:
        """True: ignored; False: re-included by a ``!`` pattern; None: no pattern matches."""
        if not path.startswith(self.prefix):
            return None
        rel = path[len(self.prefix) :]
        if os.sep != "/":  # pragma: no cover - POSIX only
            rel = rel.replace(os.sep, "/")
        if is_dir:
            rel += "/"
        if self.any is not None and self.any.search(rel) is None:
            return None  # the common case, in one regex search instead of one a pattern
        for regex, include in self.regexes:
            if regex.search(rel) is not None:
                return include
        return None


_DIR_END = "(?P<ps_d>/)"
_DIR_OR_END = "(?:(?P<ps_d>/)|$)"


def _exact(regex: re.Pattern[str], source: str) -> re.Pattern[str]:
    """``regex`` matching the path itself only, as git matches a pattern.

    pathspec's regexes also match everything below a matching directory (``lib/`` matches
    ``lib/x.py``): harmless for an ignoring pattern, since an ignored directory is never
    entered, but wrong for a negation (``!lib/`` would re-include ``lib/build``, which a
    weaker ``build`` ignores in git) and for a root inside an ignored directory. A
    trailing ``/**`` matches what is inside, not the directory (given as ``a/``); a
    trailing ``/**/`` (directories inside, at any depth) gets its own ending: pathspec
    compiles it as the directory itself.
    """
    pattern = regex.pattern
    if source.rstrip().endswith("/**/") and pattern.endswith(_DIR_END):
        return re.compile(pattern[: -len(_DIR_END)] + "/.+" + _DIR_END + "$", regex.flags)
    if pattern.endswith((_DIR_END, _DIR_OR_END)):
        return re.compile(pattern + "$", regex.flags)
    if pattern.endswith("/"):  # ``a/**``: everything inside ``a``, not ``a/`` itself
        return re.compile(pattern + ".", regex.flags)
    return regex


def _any_of(regexes: Sequence[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One regex that matches where any of these does (their named groups made plain, as
    names may repeat); None if they cannot be combined."""
    if not regexes or any(regex.flags != re.UNICODE for regex in regexes):
        return None
    try:
        return re.compile("|".join(f"(?:{_NAMED_GROUP.sub('(?:', regex.pattern)})" for regex in regexes))
    except re.error:
        return None


_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")


class IgnoreFiles:
    """The ignore rules that apply below some watched roots; not thread-safe by itself
    (the polling watcher calls it under its scan lock, the others from one thread)."""

    def __init__(self, roots: Sequence[str], *, global_file: str | None = None) -> None:
        self.roots = tuple(os.path.abspath(root) for root in roots)
        self.global_file = global_excludes_file() if global_file is None else global_file
        self._specs: dict[tuple[str, str], _Spec | None] = {}
        self._chains: dict[str, tuple[_Spec, ...]] = {}
        self._repos: dict[str, str | None] = {}
        self._rule_files: set[str] = {self.global_file}  # ignore files not named like one
        self._detached: dict[str, str] | None = None  # root -> the file that ignores it

    def copy(self) -> IgnoreFiles:
        """The same rules with caches of their own (for a watcher in another thread)."""
        other = IgnoreFiles(self.roots, global_file=self.global_file)
        other._rule_files = set(self._rule_files)
        return other

    # -- what a watcher asks

    def ignored(self, path: str, is_dir: bool) -> bool:
        """Is this file or directory ignored, its parent directories being known not to be?"""
        return self._decide(path, is_dir) is not None

    def _decide(self, path: str, is_dir: bool) -> _Spec | None:
        """The spec whose pattern ignores ``path`` (the last that matches); None: not ignored."""
        decision: _Spec | None = None
        for spec in self._chain(os.path.dirname(path)):
            verdict = spec.decide(path, is_dir)
            if verdict is not None:
                decision = spec if verdict else None
        return decision

    def notes(self) -> list[str]:
        """One line for each watched root that its enclosing repository ignores (watched all
        the same, with the rules from that root down): otherwise a silent surprise."""
        return [
            f"{root} is ignored by {source}; watching it anyway, with only the ignore files from there down"
            for root, source in self._detached_roots().items()
        ]

    def _detached_roots(self) -> dict[str, str]:
        """The roots that the rules above them ignore, each with the file that does."""
        if self._detached is None:
            self._detached = {}  # while it is computed, every chain above a root is the usual one
            found: dict[str, str] = {}
            for root in self.roots:
                source = self._ignored_from_above(root) if os.path.isdir(root) else None
                if source is not None:
                    found[root] = source
            self._chains.clear()
            self._detached = found
        return self._detached

    def _ignored_from_above(self, root: str) -> str | None:
        """The ignore file that excludes ``root`` or a directory between it and its
        repository's top (git's rules, which reach into an ignored directory); else None."""
        top = self._repo(root)
        if top is None or top == root:
            return None
        current = top
        for part in os.path.relpath(root, top).split(os.sep):
            current = os.path.join(current, part)
            spec = self._decide(current, True)
            if spec is not None:
                return spec.source
        return None

    def ignored_below(self, root: str, path: str, is_dir: bool = False) -> bool:
        """Is ``path`` or any directory between ``root`` and it ignored? (For event sources
        that report paths from a recursive watch, where nothing was pruned.)"""
        rel = os.path.relpath(path, root)
        if rel.startswith(os.pardir):
            return self.ignored(path, is_dir)
        current = root
        parts = rel.split(os.sep)
        for part in parts[:-1]:
            current = os.path.join(current, part)
            if self.ignored(current, True):
                return True
        return self.ignored(path, is_dir)

    def is_ignore_file(self, path: str) -> bool:
        """A file whose change changes the rules (and is not itself a restart trigger)."""
        name = os.path.basename(path)
        return name in IGNORE_FILE_NAMES or path in self._rule_files

    def files_to_watch(self) -> list[str]:
        """The ignore files that sit outside the watched trees or inside pruned ``.git``:
        the global file, ``info/exclude``, and ``.gitignore``/``.ignore`` in the directories
        above each root up to its repository's root (present or not: creating one counts)."""
        out: list[str] = []
        for root in self.roots:
            if not os.path.isdir(root):
                continue
            repo = self._repo(root)
            if repo is not None:
                out.append(self.global_file)
                exclude = _info_exclude(repo)
                if exclude is not None:
                    self._rule_files.add(exclude)
                    out.append(exclude)
            directory = root
            while True:
                out.extend(os.path.join(directory, name) for name in IGNORE_FILE_NAMES)
                parent = os.path.dirname(directory)
                if directory == (repo or root) or parent == directory:
                    break
                directory = parent
        return list(dict.fromkeys(out))

    def invalidate(self) -> None:
        """Forget every compiled file and chain: an ignore file (or a ``.git``) changed."""
        self._specs.clear()
        self._chains.clear()
        self._repos.clear()
        self._detached = None

    # -- the chains

    def _chain(self, directory: str) -> tuple[_Spec, ...]:
        """The specs that judge the entries of ``directory``, weakest first."""
        chain = self._chains.get(directory)
        if chain is not None:
            return chain
        repo = self._repo(directory)
        top = repo if repo is not None else self._root_of(directory)
        names = IGNORE_FILE_NAMES if repo is not None else IGNORE_FILE_NAMES[1:]
        parent = os.path.dirname(directory)
        if directory in self._detached_roots():  # the top of its own rules: the global file, then its own files
            spec = self._spec(self.global_file, directory)
            inherited = [spec] if spec is not None else []
        elif top is None or directory == top or parent == directory:
            inherited = []
            if repo is not None and directory == repo:
                exclude = _info_exclude(repo)
                if exclude is not None:
                    self._rule_files.add(exclude)
                for path in (self.global_file, exclude):
                    spec = self._spec(path, repo) if path is not None else None
                    if spec is not None:
                        inherited.append(spec)
        else:
            inherited = list(self._chain(parent))
        for name in names:
            spec = self._spec(os.path.join(directory, name), directory)
            if spec is not None:
                inherited.append(spec)
        chain = tuple(inherited)
        self._chains[directory] = chain
        return chain

    def _spec(self, path: str, base: str) -> _Spec | None:
        """The compiled file at ``path``, its patterns relative to ``base`` (cached by both:
        the global file is read relative to each repository, or detached root, it serves)."""
        key = (path, base)
        if key in self._specs:
            return self._specs[key]
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                spec: _Spec | None = _Spec(base, f.read().splitlines(), path)
        except OSError:  # absent (the usual case), a directory, unreadable
            spec = None
        except ValueError:  # pathspec refuses a pattern: the rest of git's rules still hold
            spec = None
        self._specs[key] = spec
        return spec

    def _repo(self, directory: str) -> str | None:
        """The root of the git repository (a directory with ``.git``) holding ``directory``."""
        if directory in self._repos:
            return self._repos[directory]
        if os.path.exists(os.path.join(directory, ".git")):
            found: str | None = directory
        else:
            parent = os.path.dirname(directory)
            found = None if parent == directory else self._repo(parent)
        self._repos[directory] = found
        return found

    def _root_of(self, directory: str) -> str | None:
        inside = [root for root in self.roots if directory == root or directory.startswith(root.rstrip(os.sep) + os.sep)]
        return max(inside, key=len) if inside else None


def _info_exclude(repo: str) -> str | None:
    """``info/exclude`` of the repository rooted at ``repo`` (a worktree's ``.git`` is a file
    naming its git dir, whose ``commondir`` holds the shared ``info/exclude``)."""
    dot_git = os.path.join(repo, ".git")
    if os.path.isdir(dot_git):
        return os.path.join(dot_git, "info", "exclude")
    try:
        with open(dot_git, encoding="utf-8") as f:
            first = f.readline().strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    git_dir = os.path.normpath(os.path.join(repo, first[len("gitdir:") :].strip()))
    try:
        with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as f:
            git_dir = os.path.normpath(os.path.join(git_dir, f.read().strip()))
    except OSError:
        pass
    return os.path.join(git_dir, "info", "exclude")
