"""reloadkit run in a git checkout: a change under a .gitignore'd directory does not restart,
a negated pattern does, an edited .gitignore takes effect at once, --no-ignore-vcs turns it off."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support import Reloadkit, try_get, wait_for, write_file

pytestmark = pytest.mark.timeout(90)
APP = Path(__file__).parent / "apps" / "versioned.py"


def _project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("cache/\n*.local.py\n!settings.local.py\n")
    (tmp_path / "version.py").write_text("VERSION = 'v0'\n")
    (tmp_path / "cache").mkdir()
    return tmp_path


def _no_global(tmp_path: Path) -> dict[str, str]:
    """The user's own global excludes file (~/.config/git/ignore) stays out of the test."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "no-config")}


def _changed(tmp_path: Path, generation: int) -> str:
    """RELOADKIT_CHANGED of that generation, as the app recorded it."""
    for line in (tmp_path / "starts.txt").read_text().splitlines():
        parts = line.split(" ", 2)
        if parts[1] == str(generation):
            return parts[2] if len(parts) > 2 else ""
    raise AssertionError(f"generation {generation} never started")


def _restarted(rk: Reloadkit, tmp_path: Path, generation: int) -> str:
    wait_for(lambda: rk.generations() > generation, 20, f"generation {generation}")
    wait_for(lambda: f" {generation} " in (tmp_path / "starts.txt").read_text(), 20, "the app to record its start")
    return _changed(tmp_path, generation)


def test_gitignore_decides_what_restarts(tmp_path: Path) -> None:
    _project(tmp_path)
    with Reloadkit(["-b", "127.0.0.1:0", "--", sys.executable, str(APP)], cwd=tmp_path, env=_no_global(tmp_path)) as rk:
        rk.wait_listening()
        wait_for(lambda: try_get(rk.url) == "v0", 20, "v0")
        write_file(tmp_path / "cache" / "x.py", "x = 1\n")  # ignored directory: nothing
        write_file(tmp_path / "tmp.local.py", "x = 1\n")  # ignored file: nothing
        write_file(tmp_path / "settings.local.py", "x = 1\n")  # re-included: a restart
        assert _restarted(rk, tmp_path, 1) == str(tmp_path / "settings.local.py")
        write_file(tmp_path / ".gitignore", "*.local.py\n")  # cache/ no longer ignored; no restart by itself
        write_file(tmp_path / "version.py", "VERSION = 'v1'\n")  # seen after the .gitignore edit
        assert _restarted(rk, tmp_path, 2) == str(tmp_path / "version.py")
        write_file(tmp_path / "cache" / "x.py", "x = 2\n")
        assert _restarted(rk, tmp_path, 3) == str(tmp_path / "cache" / "x.py")
        assert rk.generations() == 4


def test_no_ignore_vcs(tmp_path: Path) -> None:
    _project(tmp_path)
    with Reloadkit(["-b", "127.0.0.1:0", "--no-ignore-vcs", "--", sys.executable, str(APP)], cwd=tmp_path,
                   env=_no_global(tmp_path)) as rk:
        rk.wait_listening()
        wait_for(lambda: try_get(rk.url) == "v0", 20, "v0")
        write_file(tmp_path / "cache" / "x.py", "x = 1\n")
        assert _restarted(rk, tmp_path, 1) == str(tmp_path / "cache" / "x.py")


@pytest.mark.parametrize("layout", ["ignored-directory", "dotfiles-home"])
def test_a_root_the_enclosing_repository_ignores_reloads(tmp_path: Path, layout: str) -> None:
    """The app in projects/app of a repository whose .gitignore says ``projects/`` (or in a
    directory of a $HOME repository that ignores ``*``): its edits restart, and one line
    at start says why the enclosing rules do not count."""
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("projects/\n" if layout == "ignored-directory" else "*\n!.bashrc\n")
    root = tmp_path / "projects" / "app"
    root.mkdir(parents=True)
    (root / "version.py").write_text("VERSION = 'v0'\n")
    with Reloadkit(["-b", "127.0.0.1:0", "--", sys.executable, str(APP)], cwd=root, env=_no_global(tmp_path)) as rk:
        rk.wait_listening()
        wait_for(lambda: try_get(rk.url) == "v0", 20, "v0")
        rk.wait_for_output(rf"{root} is ignored by {tmp_path / '.gitignore'}; watching it anyway")
        write_file(root / "version.py", "VERSION = 'v1'\n")
        assert _restarted(rk, root, 1) == str(root / "version.py")
        wait_for(lambda: try_get(rk.url) == "v1", 20, "v1")
