"""A watched root on a mount without inotify events is polled beside inotify for the rest: one
watcher, one fd, changes from both seen, and one line saying what is polled and why."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_watcher import Changes, write

from reloadkit.watch.factory import create_watcher
from reloadkit.watch.filters import FilterRules
from reloadkit.watch.ignorefiles import IgnoreFiles
from reloadkit.watch.mixed import MixedWatcher

pytestmark = [pytest.mark.timeout(60), pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mountinfo is Linux's")]


def _replace(path: Path, text: str) -> None:
    """One event, one stat change: a poll can never see the file half written."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text)
    temp.rename(path)


def _mountinfo(tmp_path: Path, share: Path) -> Path:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
        f"84 22 0:53 / {share} rw,noatime - 9p C:\\134 rw,dirsync,aname=drvfs;path=C:\\134;uid=1000;trans=virtio\n"
    )
    return info


def test_a_root_on_a_share_is_polled_beside_inotify(tmp_path: Path) -> None:
    local, share = tmp_path / "local", tmp_path / "share"
    write(local / "a.py")
    write(share / "pkg" / "b.py")
    write(share / "notes.cfg")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("ignored/\n")
    write(share / "ignored" / "c.py")
    warnings: list[str] = []
    watcher = create_watcher([str(local), str(share)], FilterRules.build(), on_warning=warnings.append,
                             mountinfo=str(_mountinfo(tmp_path, share)),
                             ignore=IgnoreFiles([str(local), str(share)], global_file=str(tmp_path / "none")))
    changes = Changes(watcher)
    try:
        assert isinstance(watcher, MixedWatcher)
        assert watcher.backend == "inotify+poll"
        assert [part.backend for part in watcher.parts] == ["inotify", "poll"]
        assert warnings == [f"polling every 1s, since changes there send no inotify events: {share} (9p, WSL's drvfs (a Windows drive))"]
        assert str(share / "ignored") not in watcher.watched_dirs
        assert {str(local), str(share), str(share / "pkg")} <= watcher.watched_dirs
        watcher.add_files([str(tmp_path / "outside.txt")])
        write(local / "a.py", "changed = 1\n")
        _replace(share / "pkg" / "b.py", "changed = 1\n")
        _replace(share / "ignored" / "c.py", "changed = 1\n")
        write(tmp_path / "outside.txt", "changed\n")
        changes.expect(local / "a.py", share / "pkg" / "b.py", tmp_path / "outside.txt")
        changes.take()
        changes.only(share)  # the positive control, on the polled side: nothing from ignored/
    finally:
        changes.close()
        watcher.close()
    assert watcher.closed and all(part.closed for part in watcher.parts)


def test_only_polled_roots_or_none(tmp_path: Path) -> None:
    share = tmp_path / "share"
    write(share / "a.py")
    info = _mountinfo(tmp_path, share)
    warnings: list[str] = []
    with create_watcher([str(share)], FilterRules.build(), on_warning=warnings.append, mountinfo=str(info)) as watcher:
        assert watcher.backend == "poll" and len(warnings) == 1
    with create_watcher([str(tmp_path / "share" / "..")], FilterRules.build(), on_warning=warnings.append,
                        mountinfo=str(info)) as watcher:
        assert watcher.backend == "inotify" and len(warnings) == 1
