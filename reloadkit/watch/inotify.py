"""The inotify backend (Linux, the default there): our own per-directory watches.

One non-recursive watch per directory, placed while walking with pruning, so ignored
directories (``node_modules``, ``.git``, ...) never get a watch. No thread, no timer: the
inotify fd itself is what the supervisor selects on, and it is non-blocking.

The binding: ours, three libc calls through :mod:`ctypes` (``inotify_init``,
``inotify_add_watch``, ``inotify_rm_watch``) and the kernel's ABI constants. Until this
module was split out there were two bindings of the same three calls (watchdog's
``watchdog.observers.inotify_c`` functions, with ours as a fallback); ours was kept because:

* it is the only one that works with every watchdog release we support: watchdog 7.0.0
  creates an inotify instance and starts a reader thread when ``watchdog.observers`` is
  merely imported, so there we had to use ours anyway, and the module-level names of
  ``inotify_c`` are watchdog internals that no release promises to keep;
* the Linux backend then needs nothing from watchdog (no import of it at all on Linux):
  watchdog is only used where it is irreplaceable, for FSEvents/kqueue on macOS and BSD
  (:mod:`reloadkit.watch.watchdog_backend`), where inotify does not exist anyway;
* the constants are the kernel's stable ABI, so there is nothing to keep in step; a test
  compares them with watchdog's ``InotifyConstants`` on every watchdog the CI runs
  (``watchdog-oldest`` is 2.1.7).

watchdog's ``Inotify``/``InotifyFD`` classes were never an option: they read in a thread
and, up to 6.x, always watch recursively.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from reloadkit.watch.base import WarningCallback, Watcher, WatchLimitError, join_rel
from reloadkit.watch.filters import FilterRules
from reloadkit.watch.ignorefiles import IgnoreFiles

__all__ = [
    "INOTIFY_LIMITS",
    "InotifyUnavailableError",
    "InotifyWatcher",
    "inotify_limits",
    "inotify_unavailable",
]


class _InotifyAPI(NamedTuple):
    """The three libc calls and the event bits we use."""

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
    """This libc offers no inotify (triggers the polling fallback)."""


def _inotify_api() -> _InotifyAPI:
    """The binding, made once per process (InotifyUnavailableError where libc has none)."""
    if not _api_cache:
        _api_cache.append(_ctypes_api())
    return _api_cache[0]


def _ctypes_api() -> _InotifyAPI:
    """The three libc calls through ctypes; the constants are the kernel's ABI (``<sys/inotify.h>``)."""
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
    ) -> None:
        super().__init__(roots, rules, on_warning, ignore)
        self._api = api = _inotify_api()
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
                    f"{limit_message(err)}; {path} and other new directories are not watched"
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
                    crel = join_rel(r, entry.name)
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
        overflow = False
        i, n = 0, len(buf)
        while i + _EVENT_HEADER.size <= n:
            wd, mask, _cookie, length = _EVENT_HEADER.unpack_from(buf, i)
            start = i + _EVENT_HEADER.size
            raw_name = buf[start : start + length].rstrip(b"\0")
            i = start + length
            if mask & self._api.IN_Q_OVERFLOW:
                overflow = True
                continue
            d = self._by_wd.get(wd)
            if d is not None:  # None: a watch we already dropped
                self._event(d, mask, raw_name, changed)
        return overflow

    def _event(self, d: _Dir, mask: int, raw_name: bytes, changed: set[str]) -> None:
        """One event on a watched directory: the directory itself, a subdirectory or a file."""
        api = self._api
        if mask & api.IN_IGNORED:  # the kernel removed the watch (deleted, unmounted)
            self._drop(d, changed, rm=False)
        elif mask & (api.IN_DELETE_SELF | api.IN_MOVE_SELF):
            if d.rel == "":
                self._warn(f"watched directory {d.path} was moved or deleted; it is no longer watched")
            self._drop(d, changed, rm=bool(mask & api.IN_MOVE_SELF))
        elif not raw_name:
            return
        elif mask & api.IN_ISDIR:
            if d.rel is not None:  # directories watched for exact files only have no tree
                self._dir_event(d, d.rel, mask, os.fsdecode(raw_name), changed)
        elif mask & self._file_mask:
            self._file_event(d, mask, os.fsdecode(raw_name), changed)

    def _dir_event(self, d: _Dir, rel: str, mask: int, name: str, changed: set[str]) -> None:
        """A subdirectory arrived (walk it, reporting its files) or left (forget it)."""
        api = self._api
        if mask & (api.IN_CREATE | api.IN_MOVED_TO):
            crel = join_rel(rel, name)
            if not self._prunes(os.path.join(d.path, name), crel):
                self._add_tree(os.path.join(d.path, name), crel, d, changed, runtime=True)
        elif mask & (api.IN_DELETE | api.IN_MOVED_FROM):
            child = d.children.get(name)
            if child is not None:
                self._drop(child, changed, rm=True)

    def _file_event(self, d: _Dir, mask: int, name: str, changed: set[str]) -> None:
        """A file changed: report it if watched exactly or if it counts; track saves in progress."""
        api = self._api
        exact = d.exact.get(name)
        if exact is not None:
            changed.add(exact)
        if d.rel is None or not self._counts(os.path.join(d.path, name), join_rel(d.rel, name)):
            return
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
        return limit_message(err) if err == errno.EMFILE else os.strerror(err)
    os.close(fd)
    return None


def limit_message(err: int | None) -> str:
    """One line naming the limit that was hit and its current value."""
    if err == errno.ENOSPC:
        key, what = "max_user_watches", "watch"
    else:
        key, what = "max_user_instances", "instance"
    value = inotify_limits()[key]
    shown = f" (fs.inotify.{key}={value})" if value else ""
    return f"inotify {what} limit reached{shown}"

