"""Coalescing bursts of file changes into one batch (one restart).

A ``git checkout``, a formatter run or an editor's save produces many events over tens to
hundreds of milliseconds; restarting on the first one would start the server on a half
written tree and then restart it again. The :class:`Debouncer` waits until no new change
has arrived for ``quiet`` seconds, but never holds a batch longer than ``cap`` seconds after
its first change, so a file that is written continuously still restarts the server.

The quiet window is on a restart's critical path. With ``quick`` set, a batch of at most
``quick_paths`` paths ends after only ``quick`` seconds of quiet: an editor's save is a few
events on one or two paths within a few milliseconds, and restarts almost at once. A storm
(a ``git checkout``, a formatter over the tree) names more paths within its first
milliseconds, and from then on its batch waits for the full ``quiet`` window; a batch that
starts within ``quiet`` of the previous one's last change is taken for the rest of a storm
and waits the full window too.

Pure logic: the caller passes the time (``time.monotonic()``) in, so the class can be
tested with a fake clock and the supervisor's loop stays the only place that reads clocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["DEFAULT_CAP", "DEFAULT_QUICK", "DEFAULT_QUICK_PATHS", "DEFAULT_QUIET", "Debouncer"]

#: Seconds without a new change that end a batch (``--debounce MS`` sets it).
DEFAULT_QUIET = 0.05
#: Longest a batch is held after its first change, whatever keeps arriving.
DEFAULT_CAP = 1.0
#: Quiet that ends a small batch (a single save), when the quick window is on.
DEFAULT_QUICK = 0.005
#: A batch of at most this many paths is small.
DEFAULT_QUICK_PATHS = 3


class Debouncer:
    """Collect changed paths; say when the batch is ready; hand it over as a frozenset.

    Typical use in a ``selectors`` loop::

        deb = Debouncer()
        while True:
            for key, _ in sel.select(deb.timeout(time.monotonic())):
                deb.add(watcher.read(), time.monotonic())
            batch = deb.take(time.monotonic())
            if batch:
                restart(batch)

    ``cap`` smaller than ``quiet`` is raised to ``quiet`` (a long ``--debounce`` should not
    be cut short by the default cap).
    """

    __slots__ = (
        "_cap", "_first", "_last", "_pending", "_previous_last", "_quick", "_quick_paths", "_quiet", "_storm", "_writing",
    )

    def __init__(
        self,
        quiet: float = DEFAULT_QUIET,
        cap: float = DEFAULT_CAP,
        quick: float | None = None,
        quick_paths: int = DEFAULT_QUICK_PATHS,
    ) -> None:
        if not (math.isfinite(quiet) and quiet >= 0):
            raise ValueError(f"debounce quiet window must be a finite number >= 0, not {quiet!r}")
        if not (math.isfinite(cap) and cap >= 0):
            raise ValueError(f"debounce cap must be a finite number >= 0, not {cap!r}")
        if quick is not None and not (math.isfinite(quick) and quick >= 0):
            raise ValueError(f"debounce quick window must be a finite number >= 0, not {quick!r}")
        self._quiet = float(quiet)
        self._cap = float(max(cap, quiet))
        self._quick = None if quick is None else float(min(quick, quiet))
        self._quick_paths = quick_paths
        self._previous_last: float | None = None  # the last change of the batch handed over before
        self._storm = False  # this batch continues the previous one: the full window
        self._writing = False  # a path of the batch is still being written: the full window
        self._pending: set[str] = set()
        self._first: float | None = None
        self._last: float | None = None

    @property
    def quiet(self) -> float:
        return self._quiet

    @property
    def cap(self) -> float:
        return self._cap

    @property
    def pending(self) -> frozenset[str]:
        """The paths collected so far (a copy)."""
        return frozenset(self._pending)

    def __len__(self) -> int:
        return len(self._pending)

    def __bool__(self) -> bool:
        return bool(self._pending)

    def add(self, paths: Iterable[str], now: float, *, writing: bool = False) -> None:
        """Record changes seen at ``now``. An empty iterable changes nothing. ``writing``:
        some path of the batch is still open for writing (no quick end while a save is
        under way; the watcher knows, on inotify).

        Every call with paths restarts the quiet window, even for a path already pending
        (a file still being written is still activity).
        """
        any_path = False
        for p in paths:
            self._pending.add(p)
            any_path = True
        if not any_path:
            return
        self._writing = writing
        if self._first is None:
            self._first = now
            self._storm = self._previous_last is not None and now - self._previous_last < self._quiet
        self._last = now

    def window(self) -> float:
        """The quiet that ends the pending batch: short for a small one (see the module)."""
        if self._quick is not None and not self._storm and not self._writing and len(self._pending) <= self._quick_paths:
            return self._quick
        return self._quiet

    def deadline(self) -> float | None:
        """When the pending batch becomes due (same clock as ``now``); None when empty."""
        if not self._pending or self._first is None or self._last is None:
            return None
        return min(self._last + self.window(), self._first + self._cap)

    def timeout(self, now: float) -> float | None:
        """Seconds until :meth:`deadline` (>= 0), or None: ready for ``selector.select()``."""
        d = self.deadline()
        if d is None:
            return None
        return max(0.0, d - now)

    def due(self, now: float) -> bool:
        """Is there a batch and has its deadline passed?"""
        d = self.deadline()
        return d is not None and now >= d

    def pop(self) -> frozenset[str]:
        """Hand over the pending batch (possibly empty) and start afresh, due or not."""
        batch = frozenset(self._pending)
        if self._last is not None:
            self._previous_last = self._last
        self.clear()
        return batch

    def take(self, now: float) -> frozenset[str] | None:
        """The batch if it is due at ``now`` (then cleared), else None."""
        if self.due(now):
            return self.pop()
        return None

    def clear(self) -> None:
        """Drop whatever is pending (e.g. changes seen while the child was being started)."""
        self._pending.clear()
        self._first = None
        self._last = None
        self._storm = False
        self._writing = False

    def __repr__(self) -> str:
        return (
            f"Debouncer(quiet={self._quiet!r}, cap={self._cap!r}, pending={len(self._pending)}, "
            f"deadline={self.deadline()!r})"
        )
