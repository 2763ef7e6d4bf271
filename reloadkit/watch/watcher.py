"""Watching the source tree: which files changed since the last look.

Three backends share one small interface (:class:`Watcher`): a file descriptor the
supervisor's ``selectors`` loop waits on, and a non-blocking :meth:`Watcher.read` that
returns the changed paths that pass the :class:`~reloadkit.watch.filters.FilterRules`.

``inotify`` (Linux, default)
    Our own directory walk over watchdog's inotify binding (the ctypes functions in
    ``watchdog.observers.inotify_c``; watchdog's ``Inotify``/``InotifyFD`` classes are not
    used because they read in a thread and, up to 6.x, always watch recursively). One
    non-recursive watch per directory, placed while walking with pruning, so ignored
    directories (``node_modules``, ``.git``, ...) never get a watch. No thread, no timer:
    the inotify fd itself is what the supervisor selects on, and it is non-blocking.
``watchdog`` (macOS and other non-Linux systems)
    watchdog's native ``Observer`` (FSEvents on macOS) with a recursive schedule and our
    filters; its thread hands paths over through a pipe.
``poll`` (``--poll``, ``RELOADKIT_POLL``, or when inotify's limits are reached)
    Our own stat-based poller in a thread: it prunes ignored directories (watchdog's
    ``PollingObserver`` walks everything), re-lists a directory only when its mtime moved,
    and stats only files that match the rules.
"""

from __future__ import annotations

import abc
import ctypes
import errno
import logging
import math
import os
import stat
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, TypeVar, cast

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from reloadkit.watch.filters import FilterRules
from reloadkit.watch.ignorefiles import IgnoreFiles
from reloadkit.watch.mounts import MOUNTINFO, polled_roots

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

__all__ = [
    "BACKENDS",
    "DEFAULT_POLL_INTERVAL",
    "INOTIFY_LIMITS",
    "InotifyUnavailableError",
    "InotifyWatcher",
    "MixedWatcher",
    "PollingWatcher",
    "WatchLimitError",
    "Watcher",
    "WatchdogWatcher",
    "create_watcher",
    "inotify_limits",
    "inotify_unavailable",
]

logger = logging.getLogger(__name__)

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
        _emit(self._on_warning, message)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.backend} {state} roots={list(self.roots)!r}>"


def _emit(on_warning: WarningCallback | None, message: str) -> None:
    if on_warning is not None:
        on_warning(message)
    else:
        logger.warning("%s", message)


def _join_rel(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


# --------------------------------------------------------------------------------------
# inotify


class _InotifyAPI(NamedTuple):
    """The parts of watchdog's inotify binding we use; the same from watchdog 2.0 to 7.x."""

    init: Callable[[], int]
    add_watch: Callable[[int, bytes, int], int]
    rm_watch: Callable[[int, int], int]
    IN_MODIFY: int
    IN_ATTRIB: int
    IN_CLOSE_WRITE: int
    IN_MOVED_FROM: int
    IN_MOVED_TO: int
    IN_CREATE: int
    IN_DELETE: int
    IN_DELETE_SELF: int
    IN_MOVE_SELF: int
    IN_Q_OVERFLOW: int
    IN_IGNORED: int
    IN_ONLYDIR: int
    IN_DONT_FOLLOW: int
    IN_EXCL_UNLINK: int
    IN_ISDIR: int


_api_cache: list[_InotifyAPI] = []


class InotifyUnavailableError(OSError):
    """Neither watchdog's binding nor libc offers inotify here (triggers the polling fallback)."""


#: watchdog releases whose ``watchdog.observers`` must not even be imported on Linux:
#: 7.0.0 creates an inotify instance and starts its reader thread at import time.
_THREAD_AT_IMPORT = frozenset({(7, 0, 0)})


def _watchdog_version() -> tuple[int, ...]:
    try:
        from watchdog.version import VERSION_INFO
    except ImportError:  # pragma: no cover - present in every release we support
        return ()
    return tuple(VERSION_INFO)


def _inotify_api() -> _InotifyAPI:
    """watchdog's binding; our own ctypes adapter where watchdog's cannot be used."""
    if not _api_cache:
        api = None
        if _watchdog_version() not in _THREAD_AT_IMPORT:
            try:
                api = _watchdog_api()
            except Exception:  # noqa: BLE001 - ImportError, AttributeError, watchdog's UnsupportedLibcError
                api = None
        _api_cache.append(api if api is not None else _ctypes_api())
    return _api_cache[0]


def _watchdog_api() -> _InotifyAPI:
    """The module-level ctypes functions and constants of ``watchdog.observers.inotify_c``.

    Imported lazily: on macOS the module refuses to import. These names have the same
    shape from watchdog 2.0 to 7.x (7.x replaced the ``Inotify`` class, which we don't use).
    """
    from watchdog.observers import inotify_c

    c = inotify_c.InotifyConstants
    return _InotifyAPI(
        init=inotify_c.inotify_init,
        add_watch=inotify_c.inotify_add_watch,
        rm_watch=cast("Callable[[int, int], int]", inotify_c.inotify_rm_watch),
        IN_MODIFY=int(c.IN_MODIFY),
        IN_ATTRIB=int(c.IN_ATTRIB),
        IN_CLOSE_WRITE=int(c.IN_CLOSE_WRITE),
        IN_MOVED_FROM=int(c.IN_MOVED_FROM),
        IN_MOVED_TO=int(c.IN_MOVED_TO),
        IN_CREATE=int(c.IN_CREATE),
        IN_DELETE=int(c.IN_DELETE),
        IN_DELETE_SELF=int(c.IN_DELETE_SELF),
        IN_MOVE_SELF=int(c.IN_MOVE_SELF),
        IN_Q_OVERFLOW=int(c.IN_Q_OVERFLOW),
        IN_IGNORED=int(c.IN_IGNORED),
        IN_ONLYDIR=int(c.IN_ONLYDIR),
        IN_DONT_FOLLOW=int(c.IN_DONT_FOLLOW),
        IN_EXCL_UNLINK=int(c.IN_EXCL_UNLINK),
        IN_ISDIR=int(c.IN_ISDIR),
    )


def _ctypes_api() -> _InotifyAPI:
    """The same three libc calls through ctypes; the constants are the kernel's ABI."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        init, add, rm = libc.inotify_init, libc.inotify_add_watch, libc.inotify_rm_watch
    except (OSError, AttributeError) as exc:
        raise InotifyUnavailableError(errno.ENOSYS, f"no inotify in this libc ({exc})") from None
    init.argtypes, init.restype = [], ctypes.c_int
    add.argtypes, add.restype = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int
    rm.argtypes, rm.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return _InotifyAPI(
        init=init,
        add_watch=add,
        rm_watch=rm,
        IN_MODIFY=0x2,
        IN_ATTRIB=0x4,
        IN_CLOSE_WRITE=0x8,
        IN_MOVED_FROM=0x40,
        IN_MOVED_TO=0x80,
        IN_CREATE=0x100,
        IN_DELETE=0x200,
        IN_DELETE_SELF=0x400,
        IN_MOVE_SELF=0x800,
        IN_Q_OVERFLOW=0x4000,
        IN_IGNORED=0x8000,
        IN_ONLYDIR=0x1000000,
        IN_DONT_FOLLOW=0x2000000,
        IN_EXCL_UNLINK=0x4000000,
        IN_ISDIR=0x40000000,
    )


_EVENT_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then name
_READ_SIZE = 65536
_MAX_READS_PER_CALL = 64  # bound one read() call; the fd stays readable if more is queued
_OVER_LIMIT = -1  # _add_watch's answer when the watch limit is hit after start-up


class _Dir:
    """One watched directory: a tree directory (``rel`` is not None) and/or exact files."""

    __slots__ = ("children", "exact", "known", "parent", "path", "rel", "wd")

    def __init__(self, wd: int, path: str, rel: str | None, parent: _Dir | None) -> None:
        self.wd = wd
        self.path = path
        self.rel = rel  # relative to its root; "" for a root; None: only for exact files
        self.parent = parent
        self.known: set[str] = set()  # names of matching files, reported if the dir goes away
        self.exact: dict[str, str] = {}  # name -> path to report (add_files)
        self.children: dict[str, _Dir] = {}


class InotifyWatcher(Watcher):
    """inotify with our own per-directory watches; single-threaded, starts no thread."""

    backend = "inotify"

    def __init__(
        self,
        roots: Sequence[str],
        rules: FilterRules,
        *,
        files: Iterable[str] = (),
        on_warning: WarningCallback | None = None,
        ignore: IgnoreFiles | None = None,
        _api: _InotifyAPI | None = None,
    ) -> None:
        super().__init__(roots, rules, on_warning, ignore)
        self._api = api = _api if _api is not None else _inotify_api()
        self._file_mask = (
            api.IN_CREATE
            | api.IN_MODIFY
            | api.IN_CLOSE_WRITE
            | api.IN_ATTRIB
            | api.IN_DELETE
            | api.IN_MOVED_FROM
            | api.IN_MOVED_TO
        )
        self._mask = self._file_mask | api.IN_DELETE_SELF | api.IN_MOVE_SELF | api.IN_ONLYDIR | api.IN_EXCL_UNLINK
        self._by_wd: dict[int, _Dir] = {}
        self._writing: set[str] = set()  # modified and not closed yet (a save in progress)
        self._by_path: dict[str, _Dir] = {}
        self._exact_paths: set[str] = set()
        self._limit_warned = False
        self._fd = -1
        fd = api.init()
        if fd < 0:
            err = ctypes.get_errno()
            if err in (errno.EMFILE, errno.ENFILE):
                raise WatchLimitError(err, "inotify instance limit reached")
            if err in (errno.ENOSYS, errno.EINVAL, errno.EPERM):  # seccomp, emulators
                raise InotifyUnavailableError(err, f"inotify_init failed: {os.strerror(err)}")
            raise OSError(err, os.strerror(err))
        self._fd = fd
        try:
            os.set_inheritable(fd, False)  # inotify_init() has no CLOEXEC; children must not get it
            os.set_blocking(fd, False)  # read() must never block the supervisor
            for root in self.roots:
                self._add_tree(root, "", None, None, runtime=False)
            self._add_exact(files, runtime=False)
        except BaseException:
            self.close()
            raise

    # -- public

    def fileno(self) -> int:
        if self._closed:
            raise ValueError("fileno() on a closed watcher")
        return self._fd

    def _read(self) -> set[str]:
        changed: set[str] = set()
        if self._closed:
            return changed
        overflow = False
        for _ in range(_MAX_READS_PER_CALL):
            try:
                buf = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not buf:
                break
            overflow = self._handle(buf, changed) or overflow
        if overflow:
            self._resync(changed)
        return changed

    def add_files(self, paths: Iterable[str]) -> None:
        if not self._closed:
            self._add_exact(paths, runtime=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        fd, self._fd = self._fd, -1
        self._by_wd.clear()
        self._by_path.clear()
        self._exact_paths.clear()
        if fd >= 0:
            os.close(fd)  # frees every watch of this instance

    @property
    def watched_dirs(self) -> frozenset[str]:
        """Directories watched as part of a tree (not those watched only for exact files)."""
        return frozenset(d.path for d in self._by_wd.values() if d.rel is not None)

    @property
    def watch_count(self) -> int:
        """inotify watches this watcher holds (tree and exact-file directories)."""
        return len(self._by_wd)

    # -- watches

    def _add_watch(self, path: str, *, follow: bool, runtime: bool) -> int | None:
        """inotify_add_watch: the wd; None when the directory is gone or not readable;
        ``_OVER_LIMIT`` when the watch limit is hit at run time (at start: WatchLimitError)."""
        mask = self._mask if follow else self._mask | self._api.IN_DONT_FOLLOW
        wd = self._api.add_watch(self._fd, os.fsencode(path), mask)
        if wd >= 0:
            return wd
        err = ctypes.get_errno()
        if err == errno.ENOSPC:
            if not runtime:
                raise WatchLimitError(err, "inotify watch limit reached", path)
            if not self._limit_warned:
                self._limit_warned = True
                self._warn(
                    f"{_limit_message(err)}; {path} and other new directories are not watched"
                    " (restart with --poll, or raise the limit)"
                )
            return _OVER_LIMIT
        if err in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.ELOOP):
            return None
        raise OSError(err, os.strerror(err), path)

    def _register(self, wd: int, path: str, rel: str | None, parent: _Dir | None) -> _Dir | None:
        """Book-keeping for a (re)added watch; None if it already belongs to a tree."""
        d = self._by_wd.get(wd)
        if d is None:
            d = _Dir(wd, path, rel, parent)
            self._by_wd[wd] = d
            self._by_path[path] = d
        elif rel is None or d.rel is not None:
            # exact-file dir that is already known, or a tree dir seen again (overlapping
            # roots, a bind mount, an IN_CREATE for a dir that a scan already added)
            return d if rel is None else None
        else:  # a dir watched for exact files only becomes part of a tree
            if self._by_path.get(d.path) is d:
                del self._by_path[d.path]
            d.path, d.rel, d.parent = path, rel, parent
            self._by_path[path] = d
        if parent is not None:
            parent.children[os.path.basename(path)] = d
        return d

    def _add_tree(
        self, path: str, rel: str, parent: _Dir | None, changed: set[str] | None, *, runtime: bool, again: bool = False
    ) -> None:
        """Watch a directory and its non-ignored subdirectories; report files found if asked.

        The watch is placed before the directory is listed, so a file created meanwhile is
        seen by one or the other (or both: paths are a set).
        """
        stack: list[tuple[str, str, _Dir | None]] = [(path, rel, parent)]
        while stack:
            p, r, par = stack.pop()
            wd = self._add_watch(p, follow=(r == ""), runtime=runtime)
            if wd is None:
                continue  # vanished or unreadable: nothing to list
            d = None
            if wd != _OVER_LIMIT:
                d = self._register(wd, p, r, par)
                if d is None:
                    if not again:
                        continue  # already part of a tree
                    d = self._by_wd.get(wd)  # a rescan lists what it knows again
            # over the limit (at run time): still list it, to report what is there
            try:
                it = os.scandir(p)
            except OSError:
                continue
            known: set[str] = set()
            with it:
                for entry in it:
                    crel = _join_rel(r, entry.name)
                    try:
                        is_dir = entry.is_dir(follow_symlinks=False)
                    except OSError:
                        continue
                    if is_dir:
                        if not self._prunes(entry.path, crel):
                            stack.append((entry.path, crel, d))
                    elif self._counts(entry.path, crel):
                        known.add(entry.name)
                        if changed is not None:
                            changed.add(entry.path)
            if d is not None:
                d.known = known

    def rescan(self) -> None:
        """New rules: drop the directories they now prune, walk into those they no longer do."""
        if self._closed:
            return
        super().rescan()
        for d in list(self._by_wd.values()):
            if d.rel and self._by_wd.get(d.wd) is d and self._prunes(d.path, d.rel):
                self._drop(d, None, rm=True)
        for root in self.roots:
            if os.path.isdir(root):
                self._add_tree(root, "", None, None, runtime=True, again=True)

    def _drop(self, d: _Dir, changed: set[str] | None, *, rm: bool) -> None:
        """Forget a directory and everything below it, reporting the files it held."""
        if d.parent is not None and d.parent.children.get(os.path.basename(d.path)) is d:
            del d.parent.children[os.path.basename(d.path)]
        stack = [d]
        while stack:
            x = stack.pop()
            stack.extend(x.children.values())
            if changed is not None:
                changed.update(os.path.join(x.path, n) for n in x.known)
                changed.update(x.exact.values())
            self._exact_paths.difference_update(x.exact.values())
            if self._by_wd.get(x.wd) is x:
                del self._by_wd[x.wd]
                if rm:
                    self._api.rm_watch(self._fd, x.wd)  # EINVAL if already gone: fine
            if self._by_path.get(x.path) is x:
                del self._by_path[x.path]

    def _add_exact(self, paths: Iterable[str], *, runtime: bool) -> None:
        for p in paths:
            ap = os.path.abspath(os.fspath(p))
            if ap in self._exact_paths:
                continue
            parent, name = os.path.split(ap)
            if not name:
                continue
            d = self._by_path.get(parent)
            if d is None:
                wd = self._add_watch(parent, follow=True, runtime=runtime)
                if wd is None or wd == _OVER_LIMIT:
                    continue
                d = self._register(wd, parent, None, None)
                if d is None:  # pragma: no cover - rel=None always returns the dir
                    continue
            d.exact[name] = ap
            self._exact_paths.add(ap)

    # -- events

    def _handle(self, buf: bytes, changed: set[str]) -> bool:
        """Apply one buffer of events; True if the kernel queue overflowed."""
        api = self._api
        overflow = False
        i, n = 0, len(buf)
        while i + _EVENT_HEADER.size <= n:
            wd, mask, _cookie, length = _EVENT_HEADER.unpack_from(buf, i)
            start = i + _EVENT_HEADER.size
            raw_name = buf[start : start + length].rstrip(b"\0")
            i = start + length
            if mask & api.IN_Q_OVERFLOW:
                overflow = True
                continue
            d = self._by_wd.get(wd)
            if d is None:  # a watch we already dropped
                continue
            if mask & api.IN_IGNORED:  # the kernel removed the watch (deleted, unmounted)
                self._drop(d, changed, rm=False)
                continue
            if mask & (api.IN_DELETE_SELF | api.IN_MOVE_SELF):
                if d.rel == "":
                    self._warn(f"watched directory {d.path} was moved or deleted; it is no longer watched")
                self._drop(d, changed, rm=bool(mask & api.IN_MOVE_SELF))
                continue
            if not raw_name:
                continue
            name = os.fsdecode(raw_name)
            if mask & api.IN_ISDIR:
                if d.rel is None:
                    continue
                if mask & (api.IN_CREATE | api.IN_MOVED_TO):
                    crel = _join_rel(d.rel, name)
                    if not self._prunes(os.path.join(d.path, name), crel):
                        self._add_tree(os.path.join(d.path, name), crel, d, changed, runtime=True)
                elif mask & (api.IN_DELETE | api.IN_MOVED_FROM):
                    child = d.children.get(name)
                    if child is not None:
                        self._drop(child, changed, rm=True)
                continue
            if not mask & self._file_mask:
                continue
            exact = d.exact.get(name)
            if exact is not None:
                changed.add(exact)
            if d.rel is not None and self._counts(os.path.join(d.path, name), _join_rel(d.rel, name)):
                path = os.path.join(d.path, name)
                changed.add(path)
                if mask & (api.IN_DELETE | api.IN_MOVED_FROM):
                    d.known.discard(name)
                else:
                    d.known.add(name)
                if mask & api.IN_MODIFY and not mask & api.IN_CLOSE_WRITE:
                    self._writing.add(path)
                elif mask & (api.IN_CLOSE_WRITE | api.IN_DELETE | api.IN_MOVED_FROM):
                    self._writing.discard(path)
        return overflow

    def writing(self) -> frozenset[str]:
        return frozenset(self._writing)

    def _resync(self, changed: set[str]) -> None:
        """After a queue overflow nothing is certain: re-walk and report every file."""
        self._warn("inotify event queue overflowed; rescanning the watched trees")
        exact = list(self._exact_paths)
        for d in list(self._by_wd.values()):
            changed.update(os.path.join(d.path, n) for n in d.known)
            changed.update(d.exact.values())
            self._api.rm_watch(self._fd, d.wd)
        self._by_wd.clear()
        self._by_path.clear()
        self._exact_paths.clear()
        for root in self.roots:
            if os.path.isdir(root):
                self._add_tree(root, "", None, changed, runtime=True)
        self._add_exact(exact, runtime=True)


def _read_sysctl(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


#: The kernel's inotify limits (``fs.inotify.*``), per user.
INOTIFY_LIMITS = ("max_user_watches", "max_user_instances", "max_queued_events")


def inotify_limits() -> dict[str, str | None]:
    """Each of :data:`INOTIFY_LIMITS` and its value, None where unreadable (not Linux)."""
    return {key: _read_sysctl(f"/proc/sys/fs/inotify/{key}") for key in INOTIFY_LIMITS}


def inotify_unavailable() -> str | None:
    """Why this process cannot watch with inotify (no binding, instance limit), or None."""
    try:
        api = _inotify_api()
    except InotifyUnavailableError as exc:
        return exc.strerror or str(exc)
    fd = api.init()
    if fd < 0:
        err = ctypes.get_errno()
        return _limit_message(err) if err == errno.EMFILE else os.strerror(err)
    os.close(fd)
    return None


def _limit_message(err: int | None) -> str:
    """One line naming the limit that was hit and its current value."""
    if err == errno.ENOSPC:
        key, what = "max_user_watches", "watch"
    else:
        key, what = "max_user_instances", "instance"
    value = inotify_limits()[key]
    shown = f" (fs.inotify.{key}={value})" if value else ""
    return f"inotify {what} limit reached{shown}"


# --------------------------------------------------------------------------------------
# threaded backends: a background thread hands paths over through a pipe


class _ThreadedWatcher(Watcher):
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


# -- polling

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


class PollingWatcher(_ThreadedWatcher):
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
            files: set[str] = set()
            dirs: set[str] = set()
            try:
                with os.scandir(x.path) as it:
                    for entry in it:
                        crel = _join_rel(x.rel, entry.name)
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
                continue
            for path in x.files.keys() - files:
                if changed is not None:
                    changed.add(path)
                del x.files[path]
            for path in files - x.files.keys():
                key = _stat_key(path)
                if key is not None:
                    x.files[path] = key
                    if changed is not None:
                        changed.add(path)
            for name in x.subdirs.keys() - dirs:
                self._forget(x.subdirs.pop(name), changed)
            for name in dirs - x.subdirs.keys():
                sub = _PDir(os.path.join(x.path, name), _join_rel(x.rel, name))
                x.subdirs[name] = sub
                stack.append(sub)
            x.key = (xst.st_ino, xst.st_mtime_ns)
            x.fresh = xst.st_mtime_ns / 1e9 > listed_at - _FRESH_WINDOW


# -- watchdog Observer


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


class WatchdogWatcher(_ThreadedWatcher):
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


# -- several backends at once


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


def _split_by_mount(
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
        _emit(on_warning, f"polling every {interval:g}s, since changes there send no inotify events: "
              + "; ".join(f"{d} ({polled[d]})" for d in shown))
    return [d for d in dirs if d not in polled], poll_dirs, [f for f in exact if f not in poll_files], poll_files


# --------------------------------------------------------------------------------------


def _resolve_roots(roots: Sequence[str]) -> tuple[list[str], list[str]]:
    """Absolute, de-duplicated roots split into (directories, files); missing -> error."""
    dirs: list[str] = []
    files: list[str] = []
    seen: set[str] = set()
    for root in roots:
        ap = os.path.abspath(os.fspath(root))
        if ap in seen:
            continue
        seen.add(ap)
        try:
            st = os.stat(ap)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "watched path does not exist", ap) from None
        (dirs if stat.S_ISDIR(st.st_mode) else files).append(ap)
    return dirs, files


def create_watcher(
    roots: Sequence[str],
    rules: FilterRules,
    *,
    poll_interval: float | None = None,
    files: Iterable[str] = (),
    on_warning: WarningCallback | None = None,
    backend: str | None = None,
    ignore: IgnoreFiles | None = None,
    mountinfo: str = MOUNTINFO,
) -> Watcher:
    """Build the watcher for this platform and options.

    ``roots`` are directories (watched recursively, with pruning) or files (watched
    exactly); a missing one raises ``FileNotFoundError`` naming it. ``poll_interval`` not
    None selects polling. Otherwise Linux gets ``inotify`` (falling back to polling, with a
    one-line warning to ``on_warning``, when inotify's limits are reached) and other
    systems watchdog's native Observer. ``backend`` forces one of :data:`BACKENDS`
    (tests; ``--poll`` is the user-facing switch). ``on_warning`` defaults to logging.
    ``ignore`` adds git's ignore files to ``rules`` (and watches those outside the trees).
    On Linux, roots on mounts that deliver no inotify events (NFS, SMB, 9p, virtiofs, FUSE,
    vboxsf, WSL's drvfs: see :mod:`reloadkit.watch.mounts`, read from ``mountinfo``) are polled
    beside inotify for the rest, and ``on_warning`` hears one line naming them.
    """
    dirs, file_roots = _resolve_roots(roots)
    exact = [*file_roots, *(os.path.abspath(os.fspath(f)) for f in files)]
    if ignore is not None:
        exact += ignore.files_to_watch()
        for note in ignore.notes():
            _emit(on_warning, note)
    auto = backend is None
    if backend is None:
        if poll_interval is not None:
            backend = "poll"
        elif sys.platform.startswith("linux"):
            backend = "inotify"
        else:
            backend = "watchdog"
    interval = DEFAULT_POLL_INTERVAL if poll_interval is None else poll_interval
    if backend == "poll":
        return PollingWatcher(dirs, rules, interval=interval, files=exact, on_warning=on_warning, ignore=ignore)
    if backend == "inotify" and auto:
        dirs, poll_dirs, exact, poll_files = _split_by_mount(dirs, exact, mountinfo, interval, on_warning)
        if poll_dirs or poll_files:
            polling = PollingWatcher(poll_dirs, rules, interval=interval, files=poll_files, on_warning=on_warning,
                                     ignore=ignore.copy() if ignore is not None else None)
            if not dirs and not exact:
                return polling
            try:
                events = create_watcher(dirs, rules, files=exact, on_warning=on_warning, backend="inotify",
                                        ignore=ignore.copy() if ignore is not None else None)
            except BaseException:
                polling.close()
                raise
            return MixedWatcher([events, polling], rules, on_warning, ignore, polled_dirs=poll_dirs)
    if backend == "inotify":
        try:
            return InotifyWatcher(dirs, rules, files=exact, on_warning=on_warning, ignore=ignore)
        except WatchLimitError as exc:
            reason = _limit_message(exc.errno)
        except InotifyUnavailableError as exc:
            reason = f"inotify is not available ({exc.strerror})"
        _emit(on_warning, f"{reason}; falling back to polling every {interval:g}s")
        return PollingWatcher(dirs, rules, interval=interval, files=exact, on_warning=on_warning, ignore=ignore)
    if backend == "watchdog":
        return WatchdogWatcher(dirs, rules, files=exact, on_warning=on_warning, ignore=ignore)
    raise ValueError(f"unknown watcher backend {backend!r}; expected one of {', '.join(BACKENDS)}")
