"""The watchdog backend (macOS and other non-Linux systems): watchdog's native ``Observer``
(FSEvents on macOS, kqueue on BSD) with a recursive schedule and our filters; its thread
hands paths over through a pipe (:class:`~reloadkit.watch.base.ThreadedWatcher`).

watchdog is imported here only: on Linux the inotify and polling backends need none of it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from reloadkit.watch.base import ThreadedWatcher, WarningCallback
from reloadkit.watch.filters import FilterRules
from reloadkit.watch.ignorefiles import IgnoreFiles

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

__all__ = ["WatchdogWatcher"]



_WATCHDOG_CHANGES = frozenset({"created", "modified", "deleted", "moved", "attrib"})


class _Handler(FileSystemEventHandler):
    """Runs in the Observer's thread: filter with our rules, pass matches on."""

    def __init__(self, owner: WatchdogWatcher, root: str | None) -> None:
        super().__init__()
        self._owner = owner
        self._root = root
        # FSEvents reports real paths (/private/var/... for /var/...): accept both spellings
        self._prefixes: list[str] = []
        if root is not None:
            spellings = {p.rstrip(os.sep) + os.sep for p in (os.path.realpath(root), root)}
            self._prefixes = sorted(spellings, key=len, reverse=True)  # the longest that fits wins

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _WATCHDOG_CHANGES or event.is_directory:
            return
        raw = [event.src_path]
        dest = getattr(event, "dest_path", "")
        if dest:
            raw.append(dest)
        out: list[str] = []
        for p in raw:
            path = os.fsdecode(p)
            exact = self._owner._exact_for(path)
            if exact is not None:
                out.append(exact)
            if self._root is None:
                continue
            for prefix in self._prefixes:
                if path.startswith(prefix):
                    rel = path[len(prefix) :]
                    if self._owner._is_rule_file(path) or (
                        self._owner.rules.file_matches(rel) and not self._owner._ignored_below(self._root, path)
                    ):
                        out.append(os.path.join(self._root, rel))
                    break
        if out:
            self._owner._deliver(out)


class WatchdogWatcher(ThreadedWatcher):
    """watchdog's native Observer, recursive, filtered by our rules (macOS, BSD)."""

    backend = "watchdog"

    def __init__(
        self,
        roots: Sequence[str],
        rules: FilterRules,
        *,
        files: Iterable[str] = (),
        on_warning: WarningCallback | None = None,
        ignore: IgnoreFiles | None = None,
    ) -> None:
        super().__init__(roots, rules, on_warning, ignore)
        from watchdog.observers import Observer

        self._exact: dict[str, str] = {}  # spelling seen in events -> path to report
        self._exact_dirs: set[str] = set()
        self._observer: BaseObserver = Observer()
        try:
            for root in self.roots:
                self._observer.schedule(_Handler(self, root), root, recursive=True)
            self._observer.start()
            self.add_files(files)
        except BaseException:
            self.close()
            raise

    def _ignored_below(self, root: str, path: str) -> bool:
        """From the Observer's thread: the rules' caches are shared, so under the lock."""
        ignore = self.ignore
        if ignore is None:
            return False
        with self._lock:
            return ignore.ignored_below(root, path)

    def rescan(self) -> None:
        with self._lock:  # the Observer's thread asks the rules under it
            super().rescan()

    def _exact_for(self, path: str) -> str | None:
        with self._lock:
            return self._exact.get(path)

    def add_files(self, paths: Iterable[str]) -> None:
        if self._closed:
            return
        for p in paths:
            ap = os.path.abspath(os.fspath(p))
            parent, name = os.path.split(ap)
            with self._lock:
                if ap in self._exact:
                    continue
            if not os.path.isdir(parent):
                continue
            real = os.path.join(os.path.realpath(parent), name)
            with self._lock:
                self._exact[ap] = ap
                self._exact[real] = ap
            if parent in self._exact_dirs or any(
                parent == r or parent.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots
            ):
                continue  # a recursive schedule already sees this directory
            try:
                self._observer.schedule(_Handler(self, None), parent, recursive=False)
            except OSError as exc:
                self._warn(f"cannot watch {parent}: {exc}")
                continue
            self._exact_dirs.add(parent)

    def close(self) -> None:
        if self._closed:
            return
        observer = getattr(self, "_observer", None)
        if observer is not None:
            observer.stop()
            if observer.is_alive() and observer is not threading.current_thread():
                observer.join(timeout=5.0)
        self._close_pipe()

