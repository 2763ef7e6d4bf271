"""Several backends behind one fd: inotify for most roots, polling for those on mounts that
deliver no inotify events (:mod:`reloadkit.watch.mounts`). Linux only, like such mounts."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from reloadkit.watch.base import WarningCallback, Watcher, emit_warning
from reloadkit.watch.filters import FilterRules
from reloadkit.watch.ignorefiles import IgnoreFiles
from reloadkit.watch.mounts import polled_roots

__all__ = ["MixedWatcher"]



class MixedWatcher(Watcher):
    """inotify for some roots, polling for others (those on mounts without inotify events),
    behind one fd: an epoll instance that is readable when either backend's fd is. Linux only,
    like the mounts that need it."""

    def __init__(self, parts: Sequence[Watcher], rules: FilterRules, on_warning: WarningCallback | None,
                 ignore: IgnoreFiles | None = None, polled_dirs: Iterable[str] = ()) -> None:
        super().__init__(tuple(root for part in parts for root in part.roots), rules, on_warning, ignore)
        self.parts = tuple(parts)
        self.backend = "+".join(part.backend for part in self.parts)
        self._polled_dirs = tuple(polled_dirs)
        import select

        self._epoll = select.epoll()  # close-on-exec by default
        for part in self.parts:
            self._epoll.register(part.fileno(), select.EPOLLIN)

    def fileno(self) -> int:
        if self._closed:
            raise ValueError("fileno() on a closed watcher")
        return self._epoll.fileno()

    def _read(self) -> set[str]:
        changed: set[str] = set()
        if not self._closed:
            for part in self.parts:
                changed |= part._read()
        return changed

    def writing(self) -> frozenset[str]:
        return frozenset().union(*(part.writing() for part in self.parts))

    def rescan(self) -> None:
        super().rescan()
        for part in self.parts:
            part.rescan()

    def add_files(self, paths: Iterable[str]) -> None:
        if self._closed:
            return
        polled: list[str] = []
        watched: list[str] = []
        for path in paths:
            ap = os.path.abspath(os.fspath(path))
            (polled if _below_any(ap, self._polled_dirs) else watched).append(ap)
        if polled:
            self.parts[-1].add_files(polled)
        if watched:
            self.parts[0].add_files(watched)

    @property
    def watched_dirs(self) -> frozenset[str]:
        return frozenset(d for part in self.parts for d in getattr(part, "watched_dirs", ()))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._epoll.close()
        for part in self.parts:
            part.close()


def _below_any(path: str, dirs: Iterable[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip(os.sep) + os.sep) for d in dirs)


def split_by_mount(
    dirs: list[str], exact: list[str], mountinfo: str, interval: float, on_warning: WarningCallback | None
) -> tuple[list[str], list[str], list[str], list[str]]:
    """(inotify dirs, polled dirs, inotify files, polled files), saying once what is polled and why."""
    polled = polled_roots([*dirs, *{os.path.dirname(f) for f in exact}], mountinfo)
    if not polled:
        return dirs, [], exact, []
    poll_dirs = [d for d in dirs if d in polled]
    poll_files = [f for f in exact if os.path.dirname(f) in polled]
    shown = [*poll_dirs, *sorted({os.path.dirname(f) for f in poll_files} - set(poll_dirs))]
    if shown:
        emit_warning(on_warning, f"polling every {interval:g}s, since changes there send no inotify events: "
              + "; ".join(f"{d} ({polled[d]})" for d in shown))
    return [d for d in dirs if d not in polled], poll_dirs, [f for f in exact if f not in poll_files], poll_files

