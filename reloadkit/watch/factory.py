"""Which watcher for this platform and these options: :func:`create_watcher`.

This is the only module that knows every backend; the supervisor imports this and the
:class:`~reloadkit.watch.base.Watcher` interface, never a backend.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Iterable, Sequence

from reloadkit.watch.base import (
    BACKENDS,
    DEFAULT_POLL_INTERVAL,
    WarningCallback,
    Watcher,
    WatchLimitError,
    emit_warning,
)
from reloadkit.watch.filters import FilterRules
from reloadkit.watch.ignorefiles import IgnoreFiles
from reloadkit.watch.inotify import InotifyUnavailableError, InotifyWatcher, limit_message
from reloadkit.watch.mixed import MixedWatcher, split_by_mount
from reloadkit.watch.mounts import MOUNTINFO
from reloadkit.watch.polling import PollingWatcher

__all__ = ["create_watcher"]



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
            emit_warning(on_warning, note)
    auto = backend is None
    if backend is None:
        backend = _default_backend(poll_interval)
    interval = DEFAULT_POLL_INTERVAL if poll_interval is None else poll_interval
    if backend == "poll":
        return PollingWatcher(dirs, rules, interval=interval, files=exact, on_warning=on_warning, ignore=ignore)
    if backend == "inotify" and auto:
        dirs, poll_dirs, exact, poll_files = split_by_mount(dirs, exact, mountinfo, interval, on_warning)
        if poll_dirs or poll_files:
            return _mixed(dirs, exact, poll_dirs, poll_files, rules, interval, on_warning, ignore)
    if backend == "inotify":
        return _inotify_or_polling(dirs, exact, rules, interval, on_warning, ignore)
    if backend == "watchdog":
        from reloadkit.watch.watchdog_backend import WatchdogWatcher  # not imported on Linux

        return WatchdogWatcher(dirs, rules, files=exact, on_warning=on_warning, ignore=ignore)
    raise ValueError(f"unknown watcher backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def _default_backend(poll_interval: float | None) -> str:
    if poll_interval is not None:
        return "poll"
    return "inotify" if sys.platform.startswith("linux") else "watchdog"


def _mixed(
    dirs: list[str],
    exact: list[str],
    poll_dirs: list[str],
    poll_files: list[str],
    rules: FilterRules,
    interval: float,
    on_warning: WarningCallback | None,
    ignore: IgnoreFiles | None,
) -> Watcher:
    """Polling for what is on mounts without inotify events, inotify for the rest."""
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


def _inotify_or_polling(
    dirs: list[str],
    exact: list[str],
    rules: FilterRules,
    interval: float,
    on_warning: WarningCallback | None,
    ignore: IgnoreFiles | None,
) -> Watcher:
    """inotify; polling, with one line saying why, when its limits are hit or it is missing."""
    try:
        return InotifyWatcher(dirs, rules, files=exact, on_warning=on_warning, ignore=ignore)
    except WatchLimitError as exc:
        reason = limit_message(exc.errno)
    except InotifyUnavailableError as exc:
        reason = f"inotify is not available ({exc.strerror})"
    emit_warning(on_warning, f"{reason}; falling back to polling every {interval:g}s")
    return PollingWatcher(dirs, rules, interval=interval, files=exact, on_warning=on_warning, ignore=ignore)
