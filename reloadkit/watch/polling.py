"""The polling backend (``--poll``, ``RELOADKIT_POLL``, mounts without inotify events, or
when inotify's limits are reached): our own stat-based poller in a thread.

It prunes ignored directories (watchdog's ``PollingObserver`` walks everything), re-lists a
directory only when its mtime moved, and stats only files that match the rules.
"""

from __future__ import annotations

import math
import os
import stat
import threading
import time
from collections.abc import Iterable, Sequence

from reloadkit.watch.base import DEFAULT_POLL_INTERVAL, ThreadedWatcher, WarningCallback, join_rel
from reloadkit.watch.filters import FilterRules
from reloadkit.watch.ignorefiles import IgnoreFiles

__all__ = ["PollingWatcher"]


_StatKey = tuple[int, int, int]
#: A directory modified less than this before it was listed is listed again next time:
#: with coarse timestamps a later change could leave its mtime unchanged.
_FRESH_WINDOW = 2.0


def _stat_key(path: str) -> _StatKey | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class _PDir:
    __slots__ = ("files", "fresh", "key", "path", "rel", "subdirs")

    def __init__(self, path: str, rel: str) -> None:
        self.path = path
        self.rel = rel
        self.key: tuple[int, int] | None = None  # (st_ino, st_mtime_ns) when last listed
        self.fresh = True
        self.files: dict[str, _StatKey] = {}  # full path of each matching file -> stat key
        self.subdirs: dict[str, _PDir] = {}  # name -> subdirectory


class PollingWatcher(ThreadedWatcher):
    """Stat-based polling in a thread, pruning ignored directories.

    Each scan stats every known directory (re-listing only those whose mtime moved) and
    every matching file; non-matching files are never stat'ed.
    """

    backend = "poll"

    def __init__(
        self,
        roots: Sequence[str],
        rules: FilterRules,
        *,
        interval: float = DEFAULT_POLL_INTERVAL,
        files: Iterable[str] = (),
        on_warning: WarningCallback | None = None,
        ignore: IgnoreFiles | None = None,
    ) -> None:
        if not (math.isfinite(interval) and interval > 0):
            raise ValueError(f"poll interval must be a positive number of seconds, not {interval!r}")
        super().__init__(roots, rules, on_warning, ignore)
        self.interval = float(interval)
        self._exact: dict[str, _StatKey | None] = {}
        self._trees: list[_PDir] = []
        self._scan_lock = threading.Lock()  # held for a whole scan: the tree is the thread's
        self._failed = False
        try:
            # The baseline is taken before returning: a change made after create_watcher()
            # returns is a change.
            for root in self.roots:
                d = _PDir(root, "")
                self._relist(d, None)
                self._trees.append(d)
            self.add_files(files)
        except BaseException:
            self._close_pipe()
            raise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reloadkit-poll", daemon=True)
        self._thread.start()

    def add_files(self, paths: Iterable[str]) -> None:
        new = {os.path.abspath(os.fspath(p)) for p in paths}
        with self._lock:
            new.difference_update(self._exact)
        keys = {p: _stat_key(p) for p in new}
        with self._lock:
            for p, key in keys.items():
                self._exact.setdefault(p, key)

    def close(self) -> None:
        if self._closed:
            return
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._close_pipe()

    @property
    def watched_dirs(self) -> frozenset[str]:
        """Directories the poller lists (ignored ones are never walked)."""
        out: set[str] = set()
        with self._scan_lock:
            stack = list(self._trees)
            while stack:
                d = stack.pop()
                out.add(d.path)
                stack.extend(d.subdirs.values())
        return frozenset(out)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                changed = self.poll_once()
            except Exception as exc:  # noqa: BLE001 - a thread must not die silently; say it once
                if not self._failed:
                    self._failed = True
                    self._deliver(warning=f"polling failed: {exc!r}")
                continue
            if changed:
                self._deliver(changed)

    def poll_once(self) -> set[str]:
        """One scan: what changed since the previous one. Runs in the polling thread."""
        changed: set[str] = set()
        with self._scan_lock:
            for root in self._trees:
                self._poll_tree(root, changed)
        with self._lock:
            exact = list(self._exact.items())
        updates: dict[str, _StatKey | None] = {}
        for path, old in exact:
            new = _stat_key(path)
            if new != old:
                changed.add(path)
                updates[path] = new
        if updates:
            with self._lock:
                for path, key in updates.items():
                    if path in self._exact:
                        self._exact[path] = key
        return changed

    def _poll_tree(self, root: _PDir, changed: set[str]) -> None:
        stack = [root]
        while stack:
            d = stack.pop()
            try:
                st = os.stat(d.path) if d is root else os.lstat(d.path)
            except OSError:
                st = None
            if st is None or not stat.S_ISDIR(st.st_mode):
                self._forget(d, changed)  # gone; a root is kept, empty, and re-listed if it returns
                continue
            if (st.st_ino, st.st_mtime_ns) != d.key or d.fresh:
                self._relist(d, changed, st)
            # the hot loop: one stat per matching file, nothing else
            gone: list[str] = []
            files = d.files
            for path, old in files.items():
                try:
                    fst = os.stat(path)
                except OSError:
                    changed.add(path)
                    gone.append(path)
                    continue
                new = (fst.st_mtime_ns, fst.st_size, fst.st_ino)
                if new != old:
                    changed.add(path)
                    files[path] = new  # same keys: fine while iterating
            for path in gone:
                del files[path]
            stack.extend(d.subdirs.values())

    def rescan(self) -> None:
        """New rules: list every known directory again, reporting nothing."""
        with self._scan_lock:  # the polling thread uses the rules only under this lock
            super().rescan()
            stack = list(self._trees)
            nodes: list[_PDir] = []
            while stack:
                d = stack.pop()
                nodes.append(d)
                stack.extend(d.subdirs.values())
            for d in nodes:
                self._relist(d, None)

    def _forget(self, d: _PDir, changed: set[str] | None) -> None:
        stack = [d]
        while stack:
            x = stack.pop()
            if changed is not None:
                changed.update(x.files)
            stack.extend(x.subdirs.values())
            x.files = {}
            x.subdirs = {}
            x.key = None

    def _relist(self, d: _PDir, changed: set[str] | None, st: os.stat_result | None = None) -> None:
        """List a directory (and, for new subdirectories, their whole subtree)."""
        stack = [d]
        while stack:
            x = stack.pop()
            if st is None or x is not d:
                try:
                    xst = os.stat(x.path)
                except OSError:
                    continue
            else:
                xst = st
            listed_at = time.time()
            listing = self._list(x)
            if listing is None:
                continue
            files, dirs = listing
            self._update_files(x, files, changed)
            for name in x.subdirs.keys() - dirs:
                self._forget(x.subdirs.pop(name), changed)
            for name in dirs - x.subdirs.keys():
                sub = _PDir(os.path.join(x.path, name), join_rel(x.rel, name))
                x.subdirs[name] = sub
                stack.append(sub)
            x.key = (xst.st_ino, xst.st_mtime_ns)
            x.fresh = xst.st_mtime_ns / 1e9 > listed_at - _FRESH_WINDOW

    def _list(self, d: _PDir) -> tuple[set[str], set[str]] | None:
        """(paths of the files that count, names of the subdirectories not pruned); None if
        the directory cannot be listed."""
        files: set[str] = set()
        dirs: set[str] = set()
        try:
            with os.scandir(d.path) as it:
                for entry in it:
                    crel = join_rel(d.rel, entry.name)
                    try:
                        is_dir = entry.is_dir(follow_symlinks=False)
                    except OSError:
                        continue
                    if is_dir:
                        if not self._prunes(entry.path, crel):
                            dirs.add(entry.name)
                    elif self._counts(entry.path, crel):
                        files.add(entry.path)
        except OSError:
            return None
        return files, dirs

    @staticmethod
    def _update_files(d: _PDir, files: set[str], changed: set[str] | None) -> None:
        """Files gone from a listing or new in it are changes; new ones get their stat key."""
        for path in d.files.keys() - files:
            if changed is not None:
                changed.add(path)
            del d.files[path]
        for path in files - d.files.keys():
            key = _stat_key(path)
            if key is not None:
                d.files[path] = key
                if changed is not None:
                    changed.add(path)
