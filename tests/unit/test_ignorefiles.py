"""IgnoreFiles: git's combination of ignore files, matched by pathspec, on a real directory tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from reloadkit.watch.ignorefiles import IgnoreFiles

pytestmark = pytest.mark.timeout(30)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return _tree(tmp_path, {
        ".git/info/exclude": "secret.py\n",
        ".gitignore": "build/\n*.log\n!keep.log\n/top.py\ngen/**\n!gen/api.py\n",
        "src/.gitignore": "local_*.py\n!local_ok.py\n",
        "src/deep/.ignore": "scratch/\nkeep.log\n",
        "global-ignore": "*.bak\n",
    })


@pytest.mark.parametrize(("rel", "is_dir", "expected"), [
    ("app.py", False, False),
    ("build", True, True),  # a directory pattern
    ("build", False, False),  # ... matches directories only
    ("src/build", True, True),  # unanchored: at any depth
    ("debug.log", False, True),
    ("keep.log", False, False),  # negated
    ("src/deep/keep.log", False, True),  # .ignore beats the .gitignore above it
    ("top.py", False, True),
    ("src/top.py", False, False),  # anchored to the .gitignore's directory
    ("src/local_x.py", False, True),  # the nested .gitignore
    ("src/local_ok.py", False, False),
    ("local_x.py", False, False),  # ... applies only below its directory
    ("secret.py", False, True),  # .git/info/exclude
    ("src/secret.py", False, True),
    ("src/deep/scratch", True, True),
    ("x.bak", False, True),  # the global excludes file
    ("gen/api.py", False, False),
    ("gen/other.py", False, True),
])
def test_git_rules(repo: Path, rel: str, is_dir: bool, expected: bool) -> None:
    rules = IgnoreFiles([str(repo / "src")], global_file=str(repo / "global-ignore"))
    assert rules.ignored(str(repo / rel), is_dir) is expected


def test_gitignore_counts_only_inside_a_repository_but_ignore_everywhere(tmp_path: Path) -> None:
    _tree(tmp_path, {".gitignore": "*.py\n", ".ignore": "*.txt\n", "sub/.ignore": "!b.txt\n"})
    rules = IgnoreFiles([str(tmp_path)], global_file=str(tmp_path / "none"))
    assert not rules.ignored(str(tmp_path / "a.py"), False)
    assert rules.ignored(str(tmp_path / "a.txt"), False)
    assert not rules.ignored(str(tmp_path / "sub" / "b.txt"), False)
    (tmp_path / ".git").mkdir()
    rules.invalidate()
    assert rules.ignored(str(tmp_path / "a.py"), False)


def test_ignored_below_checks_the_directories_on_the_way(repo: Path) -> None:
    """git cannot re-include a file whose directory is excluded; pathspec alone would."""
    (repo / ".gitignore").write_text("build/\n!build/keep.py\n")
    rules = IgnoreFiles([str(repo)], global_file=str(repo / "none"))
    assert not rules.ignored(str(repo / "build" / "keep.py"), False)
    assert rules.ignored_below(str(repo), str(repo / "build" / "keep.py"))
    assert not rules.ignored_below(str(repo), str(repo / "src" / "app.py"))


def test_invalidate_rereads_the_files(repo: Path) -> None:
    rules = IgnoreFiles([str(repo)], global_file=str(repo / "none"))
    target = str(repo / "src" / "new.py")
    assert not rules.ignored(target, False)
    (repo / "src" / ".gitignore").write_text("new.py\n")
    assert not rules.ignored(target, False)  # cached until told
    rules.invalidate()
    assert rules.ignored(target, False)
    assert rules.is_ignore_file(str(repo / "src" / ".gitignore"))
    assert not rules.is_ignore_file(target)


def test_files_to_watch_and_worktrees(tmp_path: Path) -> None:
    main = _tree(tmp_path / "main", {".git/info/exclude": "", "a.py": ""})
    worktree = tmp_path / "wt"
    _tree(worktree, {"src/a.py": ""})
    git_dir = main / ".git" / "worktrees" / "wt"
    git_dir.mkdir(parents=True)
    (git_dir / "commondir").write_text("../..\n")
    (worktree / ".git").write_text(f"gitdir: {git_dir}\n")
    (main / ".git" / "info" / "exclude").write_text("*.secret\n")
    rules = IgnoreFiles([str(worktree / "src")], global_file=str(tmp_path / "global"))
    watch = rules.files_to_watch()
    assert str(main / ".git" / "info" / "exclude") in watch
    assert str(worktree / ".gitignore") in watch and str(worktree / "src" / ".ignore") in watch
    assert str(tmp_path / "global") in watch
    assert rules.ignored(str(worktree / "src" / "x.secret"), False)
    assert rules.is_ignore_file(str(main / ".git" / "info" / "exclude"))


def test_a_root_the_enclosing_repository_ignores_is_watched_with_its_own_rules(tmp_path: Path) -> None:
    """``projects/`` in the repository's .gitignore, the app in projects/app: the root is
    judged by the rules from it down, not by those that ignore it."""
    _tree(tmp_path, {
        ".git/info/exclude": "*.py\n",
        ".gitignore": "projects/\n*.txt\n",
        "projects/app/.gitignore": "build/\n",
        "projects/app/views.py": "",
        "global": "*.swp\n",
    })
    root = tmp_path / "projects" / "app"
    rules = IgnoreFiles([str(root)], global_file=str(tmp_path / "global"))
    assert not rules.ignored_below(str(root), str(root / "views.py"))
    assert not rules.ignored_below(str(root), str(root / "notes.txt"))  # the enclosing file's *.txt is not its
    assert not rules.ignored_below(str(root), str(root / "sub" / "a.py"))  # nor the enclosing info/exclude
    assert rules.ignored_below(str(root), str(root / "build"), is_dir=True)  # its own .gitignore counts
    assert rules.ignored_below(str(root), str(root / "x.swp"))  # and the global file, relative to it
    assert rules.notes() == [f"{root} is ignored by {tmp_path / '.gitignore'}; watching it anyway,"
                             " with only the ignore files from there down"]
    # The repository's other paths keep the usual rules (a second root at the top).
    both = IgnoreFiles([str(root), str(tmp_path)], global_file=str(tmp_path / "global"))
    assert both.ignored_below(str(tmp_path), str(tmp_path / "other" / "a.txt"))
    assert both.ignored(str(tmp_path / "projects"), True)
    assert not both.ignored_below(str(root), str(root / "notes.txt"))


def test_a_project_under_a_dotfiles_repository_that_ignores_everything(tmp_path: Path) -> None:
    """$HOME is a repository whose .gitignore says ``*``; the project has no .git of its own."""
    home = _tree(tmp_path / "home", {".git/HEAD": "", ".gitignore": "*\n!.bashrc\n", "code/site/app.py": ""})
    root = home / "code" / "site"
    rules = IgnoreFiles([str(root)], global_file=str(tmp_path / "none"))
    assert not rules.ignored_below(str(root), str(root / "app.py"))
    assert not rules.ignored_below(str(root), str(root / "pkg" / "mod.py"))
    assert rules.notes() == [f"{root} is ignored by {home / '.gitignore'}; watching it anyway,"
                             " with only the ignore files from there down"]


def test_a_root_that_is_not_ignored_keeps_the_rules_from_above(repo: Path) -> None:
    rules = IgnoreFiles([str(repo / "src")], global_file=str(repo / "global-ignore"))
    assert rules.notes() == []
    assert rules.ignored_below(str(repo / "src"), str(repo / "src" / "debug.log"))


def test_the_global_file_serves_each_repository(tmp_path: Path) -> None:
    """Two roots in two repositories: the global excludes file applies in both."""
    _tree(tmp_path, {"a/.git/HEAD": "", "b/.git/HEAD": "", "global": "*.bak\n"})
    rules = IgnoreFiles([str(tmp_path / "a"), str(tmp_path / "b")], global_file=str(tmp_path / "global"))
    assert rules.ignored(str(tmp_path / "a" / "x.bak"), False)
    assert rules.ignored(str(tmp_path / "b" / "x.bak"), False)
