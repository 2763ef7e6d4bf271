"""Differential: reloadkit's ignore decisions against git's own (``git check-ignore
--no-index``) on generated trees: nested ``.gitignore`` files, negations, anchored and
directory-only patterns, ``**``, ``info/exclude`` and the global excludes file. Then the same
for roots that the enclosing repository ignores: they must be judged as git judges the same
tree when it is a repository of its own.

The generator is deterministic (seeded): a failure names its seed and the tree is rebuilt
the same way each run.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from reloadkit.watch.ignorefiles import IgnoreFiles

GIT = shutil.which("git")
pytestmark = [pytest.mark.timeout(120), pytest.mark.skipif(GIT is None, reason="git is not installed")]

NAMES = ("a", "b", "c.py", "d.txt", "build", "lib", "x.log")
DIR_NAMES = ("a", "b", "build", "lib", "src")
PATTERNS = (
    "a", "b", "c.py", "*.py", "*.txt", "*.log", "build", "build/", "/build", "/build/", "lib/",
    "a/b", "/a/b", "a/**", "**/b", "**/lib/", "src/**/c.py", "a*", "?.txt", "[ab]", "[!a]",
    "*", "*/", "**", "src/*", "/src/*.py", "d.*", "lib/**/x.log", "# a comment", "", "\\#b",
    "a/**/", "src/*/", "/*", "**/*", "b ", "lib/**/**",
)
SEEDS = range(80)


def _git(cwd: Path, *args: str, stdin: str | None = None, home: Path) -> str:
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
    }
    done = subprocess.run([str(GIT), *args], cwd=cwd, input=stdin, capture_output=True, text=True, env=env, check=False)
    if done.returncode not in (0, 1):
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout


def _patterns(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 4)):
        pattern = rng.choice(PATTERNS)
        if pattern and not pattern.startswith("#") and rng.random() < 0.3:
            pattern = "!" + pattern
        lines.append(pattern)
    return "\n".join(lines) + "\n"


def _tree(root: Path, rng: random.Random) -> list[tuple[str, bool]]:
    """Directories and files under ``root`` (relative, ``/``-separated, with is_dir), some
    directories with a ``.gitignore`` of random patterns."""
    entries: list[tuple[str, bool]] = []

    def fill(directory: Path, rel: str, depth: int) -> None:
        if rng.random() < (0.7 if depth == 0 else 0.35):
            (directory / ".gitignore").write_text(_patterns(rng))
        for name in rng.sample(NAMES, rng.randint(1, 4)):
            (directory / name).write_text("")
            entries.append((f"{rel}{name}", False))
        if depth < 3:
            for name in rng.sample(DIR_NAMES, rng.randint(0, 2)):
                if (directory / name).exists():
                    continue
                (directory / name).mkdir()
                entries.append((f"{rel}{name}", True))
                fill(directory / name, f"{rel}{name}/", depth + 1)

    fill(root, "", 0)
    return entries


def _git_ignored(repo: Path, entries: list[tuple[str, bool]], home: Path) -> dict[str, bool]:
    """git's verdict for each path: the last matching pattern (or its directory's) ignores it."""
    out = _git(repo, "check-ignore", "--no-index", "--stdin", "-v", "-n", stdin="".join(f"{rel}\n" for rel, _ in entries), home=home)
    verdicts: dict[str, bool] = {}
    for line in out.splitlines():
        source, path = line.split("\t", 1)
        pattern = source.split(":", 2)[2]
        verdicts[path] = bool(pattern) and not pattern.startswith("!")
    return verdicts


def _setup(tmp_path: Path, seed: int) -> tuple[Path, Path, random.Random, list[tuple[str, bool]]]:
    rng = random.Random(seed)
    home = tmp_path / "home"
    (home / ".config" / "git").mkdir(parents=True)
    (home / ".config" / "git" / "ignore").write_text(_patterns(rng) if rng.random() < 0.5 else "")
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", home=home)
    if rng.random() < 0.5:
        (repo / ".git" / "info").mkdir(exist_ok=True)
        (repo / ".git" / "info" / "exclude").write_text(_patterns(rng))
    return home, repo, rng, _tree(repo, rng)


def _mismatches(rules: IgnoreFiles, root: Path, entries: list[tuple[str, bool]], expected: dict[str, bool]) -> list[str]:
    wrong = []
    for rel, is_dir in entries:
        mine = rules.ignored_below(str(root), str(root / rel), is_dir)
        if mine != expected[rel]:
            wrong.append(f"{rel}{'/' if is_dir else ''}: git says {'ignored' if expected[rel] else 'kept'}")
    return wrong


def _describe(repo: Path) -> str:
    files = sorted(p for p in repo.parent.rglob("*") if p.name in (".gitignore", "exclude", "ignore"))
    return "\n".join(f"{p.relative_to(repo.parent)}: {p.read_text()!r}" for p in files)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_same_decisions_as_git(tmp_path: Path, seed: int) -> None:
    home, repo, _rng, entries = _setup(tmp_path, seed)
    expected = _git_ignored(repo, entries, home)
    rules = IgnoreFiles([str(repo)], global_file=str(home / ".config" / "git" / "ignore"))
    wrong = _mismatches(rules, repo, entries, expected)
    assert not wrong, f"seed {seed}:\n" + "\n".join(wrong[:10]) + "\n" + _describe(repo)


@pytest.mark.parametrize("seed", SEEDS)
def test_an_ignored_root_is_judged_as_a_repository_of_its_own(tmp_path: Path, seed: int) -> None:
    """Every directory git ignores, watched as a root, gets the decisions git makes when that
    directory is copied out and made a repository (same global excludes file)."""
    home, repo, _rng, entries = _setup(tmp_path, seed)
    verdicts = _git_ignored(repo, entries, home)
    ignored_dirs = [rel for rel, is_dir in entries if is_dir and verdicts[rel]]
    for number, rel in enumerate(ignored_dirs[:3]):
        root = repo / rel
        alone = tmp_path / f"alone{number}"
        shutil.copytree(root, alone)
        _git(alone, "init", "-q", home=home)
        below = [(sub[len(rel) + 1:], is_dir) for sub, is_dir in entries if sub.startswith(rel + "/")]
        expected = _git_ignored(alone, below, home) if below else {}
        rules = IgnoreFiles([str(root)], global_file=str(home / ".config" / "git" / "ignore"))
        assert len(rules.notes()) == 1, rules.notes()
        wrong = _mismatches(rules, root, below, expected)
        assert not wrong, f"seed {seed}, root {rel}:\n" + "\n".join(wrong[:10]) + "\n" + _describe(repo)
