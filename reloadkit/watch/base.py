"""The interface every watcher backend implements, and what the backends share.

A backend is a :class:`Watcher`: a file descriptor the supervisor's ``selectors`` loop waits
on, and a non-blocking :meth:`Watcher.read` that returns the changed paths that pass the
:class:`~reloadkit.watch.filters.FilterRules` (and the ignore files). The backends live one
per module: :mod:`~reloadkit.watch.inotify` (Linux), :mod:`~reloadkit.watch.polling`,
:mod:`~reloadkit.watch.watchdog_backend` (macOS, BSD) and :mod:`~reloadkit.watch.mixed`
(inotify and polling behind one fd); :func:`reloadkit.watch.factory.create_watcher` picks
one. Nothing here knows about processes: a watcher only says which files changed.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TypeVar

from reloadkit.watch.filters import FilterRules
from reloadkit.watch.ignorefiles import IgnoreFiles

__all__ = ["BACKENDS", "DEFAULT_POLL_INTERVAL", "WarningCallback", "WatchLimitError", "Watcher"]

logger = logging.getLogger("reloadkit.watch")

#: Seconds between two scans of the polling backend (``--poll`` without a value).
DEFAULT_POLL_INTERVAL = 1.0
BACKENDS = ("inotify", "watchdog", "poll")

WarningCallback = Callable[[str], None]
_W = TypeVar("_W", bound="Watcher")


class WatchLimitError(OSError):
    """inotify's per-user watch (ENOSPC) or instance (EMFILE) limit was hit.

    Raised while an inotify watcher is being built; :func:`create_watcher` catches it and
    falls back to polling.
    """


class Watcher(abc.ABC):
    """A source of changed paths for the supervisor's event loop; a context manager.

    ``fileno()`` becomes readable when changes may be available; ``read()`` never blocks
    and may return an empty set (a wake-up for nothing, or only ignored changes). After
    ``close()``, ``read()`` returns an empty set and ``fileno()`` raises ``ValueError``;
    unregister the fd from the selector before closing.
    """

    backend: str = ""

    def __init__(
        self, roots: Sequence[str], rules: FilterRules, on_warning: WarningCallback | None, ignore: IgnoreFiles | None = None
    ) -> None:
        self.roots: tuple[str, ...] = tuple(roots)
        self.rules = rules
        self.ignore = ignore  # git's and .ignore's rules, on top of ``rules``
        self._on_warning = on_warning
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @abc.abstractmethod
    def fileno(self) -> int:
        """The fd to register for reading in a selector."""

    def writing(self) -> frozenset[str]:
        """Changed paths still open for writing as far as the events tell (modified, not
        closed yet): a save in progress. Empty where the backend cannot tell."""
        return frozenset()

    def read(self) -> set[str]:
        """Drain what is available, without blocking: absolute paths of changed files.

        A changed ignore file is not a change: the rules are read again and the trees
        re-walked (newly ignored directories lose their watches, re-included ones get them).
        """
        changed = self._read()
        if self.ignore is not None and changed:
            rules_changed = {path for path in changed if self.ignore.is_ignore_file(path)}
            if rules_changed:
                changed -= rules_changed
                self.rescan()
        return changed

    @abc.abstractmethod
    def _read(self) -> set[str]:
        """The backend's part of :meth:`read`."""

    def rescan(self) -> None:
        """Read the ignore files again and apply them to what is watched, reporting nothing."""
        if self.ignore is not None:
            self.ignore.invalidate()

    def _is_rule_file(self, path: str) -> bool:
        return self.ignore is not None and self.ignore.is_ignore_file(path)

    def _prunes(self, path: str, rel: str) -> bool:
        """Is this directory (parents known to be fine) never to be watched nor walked?"""
        if self.rules.dir_ignored(rel, parents_checked=True):
            return True
        return self.ignore is not None and self.ignore.ignored(path, True)

    def _counts(self, path: str, rel: str) -> bool:
        """Does a change to this file (parents known to be fine) count?"""
        if self.ignore is not None:
            if self.ignore.is_ignore_file(path):
                return True  # watched so that a change re-reads the rules; never a restart
            if not self.rules.file_matches(rel, parents_checked=True):
                return False
            return not self.ignore.ignored(path, False)
        return self.rules.file_matches(rel, parents_checked=True)

    @abc.abstractmethod
    def add_files(self, paths: Iterable[str]) -> None:
        """Also watch exactly these files (their parent directory, non-recursively).

        They count whatever the rules say. Idempotent; a file whose directory does not
        exist is skipped (call again later). Never raises for a limit: warns instead.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the fd(s), watches and thread; idempotent."""

    def __enter__(self: _W) -> _W:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _warn(self, message: str) -> None:
        emit_warning(self._on_warning, message)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.backend} {state} roots={list(self.roots)!r}>"


def emit_warning(on_warning: WarningCallback | None, message: str) -> None:
    if on_warning is not None:
        on_warning(message)
    else:
        logger.warning("%s", message)


def join_rel(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name



# --------------------------------------------------------------------------------------
# threaded backends: a background thread hands paths over through a pipe


class ThreadedWatcher(Watcher):
    """Backends whose changes come from a thread: collected under a lock, one byte in a pipe.

    Warnings raised in the thread are queued and passed to ``on_warning`` from ``read()``,
    so the callback always runs in the supervisor's thread.
    """

    def __init__(
        self, roots: Sequence[str], rules: FilterRules, on_warning: WarningCallback | None, ignore: IgnoreFiles | None
    ) -> None:
        super().__init__(roots, rules, on_warning, ignore)
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._warnings: list[str] = []
        self._signaled = False
        self._rfd, self._wfd = os.pipe()  # non-inheritable by default (PEP 446)
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)

    def fileno(self) -> int:
        if self._closed:
            raise ValueError("fileno() on a closed watcher")
        return self._rfd

    def _deliver(self, paths: Iterable[str] = (), warning: str | None = None) -> None:
        """Called from the background thread."""
        with self._lock:
            if self._closed:
                return
            before = len(self._pending)
            self._pending.update(paths)
            if warning is not None:
                self._warnings.append(warning)
            if (len(self._pending) > before or warning is not None) and not self._signaled:
                self._signaled = True
                try:
                    os.write(self._wfd, b"!")
                except BlockingIOError:  # pragma: no cover - one byte per read() cycle
                    pass

    def _read(self) -> set[str]:
        if self._closed:
            return set()
        # Drain first, then swap under the lock: a path added after the swap writes a new
        # byte (``_signaled`` is cleared in the same critical section), so none is stranded.
        try:
            while os.read(self._rfd, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            batch, self._pending = self._pending, set()
            warnings, self._warnings = self._warnings, []
            self._signaled = False
        for message in warnings:
            self._warn(message)
        return batch

    def _close_pipe(self) -> None:
        with self._lock:
            if self._rfd < 0:
                return
            self._closed = True
            rfd, wfd, self._rfd, self._wfd = self._rfd, self._wfd, -1, -1
        os.close(rfd)
        os.close(wfd)

