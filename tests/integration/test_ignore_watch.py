"""Ignore files on the real backends: ignored directories get no watch, negations count,
and an edited .gitignore / .git/info/exclude takes effect at once without being a change."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_watcher import ALL_BACKENDS, POLL, Changes, write

from reloadkit.watch.base import Watcher
from reloadkit.watch.factory import create_watcher
from reloadkit.watch.filters import FilterRules
from reloadkit.watch.ignorefiles import IgnoreFiles

pytestmark = [pytest.mark.timeout(60), pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git" / "info").mkdir(parents=True)
    (tmp_path / ".git" / "info" / "exclude").write_text("")
    (tmp_path / ".gitignore").write_text("generated/\n*.gen.py\n!keep.gen.py\n")
    for rel in ("app.py", "generated/deep/a.py", "src/x.gen.py", "src/keep.gen.py", "other/b.py"):
        write(tmp_path / rel)
    return tmp_path


@pytest.fixture
def watch(repo: Path) -> Iterator[Callable[..., tuple[Watcher, Changes]]]:
    made: list[tuple[Watcher, Changes]] = []

    def make(backend: str, *, ignore: bool = True) -> tuple[Watcher, Changes]:
        rules = IgnoreFiles([str(repo)], global_file=str(repo / "no-global")) if ignore else None
        watcher = create_watcher([str(repo)], FilterRules.build(), backend=backend,
                                 poll_interval=POLL if backend == "poll" else None, ignore=rules)
        made.append((watcher, Changes(watcher)))
        return made[-1]

    yield make
    for watcher, changes in made:
        changes.close()
        watcher.close()


def _watched(watcher: Watcher) -> set[str] | None:
    dirs = getattr(watcher, "watched_dirs", None)
    return None if dirs is None or watcher.backend == "watchdog" else set(dirs)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_ignored_paths_are_not_watched_and_negations_count(repo: Path, watch: Callable[..., tuple[Watcher, Changes]], backend: str) -> None:
    watcher, changes = watch(backend)
    watched = _watched(watcher)
    if watched is not None:
        assert str(repo / "generated") not in watched and str(repo / "generated" / "deep") not in watched
        assert str(repo / "src") in watched
    write(repo / "generated" / "deep" / "a.py", "changed = 1\n")
    write(repo / "src" / "x.gen.py", "changed = 1\n")
    write(repo / "src" / "keep.gen.py", "changed = 1\n")  # re-included by !keep.gen.py
    changes.only(repo, repo / "src" / "keep.gen.py")


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_an_edited_gitignore_takes_effect_and_is_no_change(repo: Path, watch: Callable[..., tuple[Watcher, Changes]], backend: str) -> None:
    watcher, changes = watch(backend)
    (repo / ".gitignore").write_text("other/\n")  # generated/ is no longer ignored, other/ is
    changes.only(repo)  # the rules are read again before a later change is reported; .gitignore is none
    watched = _watched(watcher)
    if watched is not None:
        assert str(repo / "generated" / "deep") in watched and str(repo / "other") not in watched
    write(repo / "other" / "b.py", "changed = 1\n")
    write(repo / "generated" / "deep" / "a.py", "changed = 2\n")
    write(repo / "src" / "x.gen.py", "changed = 2\n")
    changes.only(repo, repo / "generated" / "deep" / "a.py", repo / "src" / "x.gen.py")


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_info_exclude_and_a_new_nested_gitignore(repo: Path, watch: Callable[..., tuple[Watcher, Changes]], backend: str) -> None:
    _watcher, changes = watch(backend)
    (repo / ".git" / "info" / "exclude").write_text("app.py\n")  # inside .git, which is never walked
    write(repo / "src" / ".gitignore", "local.py\n")
    changes.only(repo)
    write(repo / "app.py", "changed = 1\n")
    write(repo / "src" / "local.py", "changed = 1\n")
    write(repo / "src" / "kept.py", "changed = 1\n")
    changes.only(repo, repo / "src" / "kept.py")


@pytest.mark.parametrize("backend", ALL_BACKENDS[:1])
def test_no_ignore_vcs_watches_everything(repo: Path, watch: Callable[..., tuple[Watcher, Changes]], backend: str) -> None:
    watcher, changes = watch(backend, ignore=False)
    watched = _watched(watcher)
    if watched is not None:
        assert str(repo / "generated" / "deep") in watched
    write(repo / "generated" / "deep" / "a.py", "changed = 1\n")
    changes.only(repo, repo / "generated" / "deep" / "a.py")


