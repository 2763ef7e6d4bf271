"""Pure restart policy: when a child that keeps dying may be started again."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["CrashBackoff", "WarmBlame", "describe_changes", "exit_status", "speaks_restart_protocol"]


class CrashBackoff:
    """Delay restarts of a child that dies right after it started, doubling up to a cap.

    A child that ran for ``healthy`` seconds resets the delay: only a tight loop is slowed.
    """

    def __init__(self, first: float = 0.25, cap: float = 8.0, healthy: float = 2.0) -> None:
        self.first = first
        self.cap = cap
        self.healthy = healthy
        self._delay = 0.0

    def next_delay(self, lifetime: float) -> float:
        """Seconds to wait before the next start, given how long the last child lived."""
        if lifetime >= self.healthy:
            self._delay = 0.0
        else:
            self._delay = self.first if self._delay == 0 else min(self._delay * 2, self.cap)
        return self._delay

    def reset(self) -> None:
        self._delay = 0.0


class WarmBlame:
    """The second line of defence of warm starts: is a warm generation's failure warm's fault?

    A warm generation that exits before it is ready, where the last cold generation of the
    same command served, is suspect: it is started again cold at once. If that cold start
    serves, the failure was warm's (the second such one turns warm off for the session); if
    it fails too, the fault is the code's and nothing is held against warm.
    """

    def __init__(self, limit: int = 2) -> None:
        self.limit = limit
        self.cold_served = False  # the last cold generation became ready
        self.suspect: int | None = None  # the generation started again cold
        self.confirmed = 0
        self.off = False

    def failed_early(self, number: int, *, warm: bool) -> bool:
        """Generation ``number`` exited before it was ready: True to start it again cold now."""
        if not warm:
            self.cold_served = False
            if self.suspect == number:
                self.suspect = None  # cold fails too: the code's fault
            return False
        if self.off or not self.cold_served:
            return False
        self.suspect = number
        return True

    def ready(self, number: int, *, warm: bool) -> bool:
        """Generation ``number`` is ready: True when this confirms a warm failure (the cold
        retry served); :attr:`off` is then set at the ``limit``-th."""
        if warm:
            return False
        self.cold_served = True
        if self.suspect != number:
            return False
        self.suspect = None
        self.confirmed += 1
        self.off = self.confirmed >= self.limit
        return True


def exit_status(wait_status: int) -> int:
    """A shell-style exit code: the child's code, or 128+N when signal N killed it."""
    code = 0
    if os.WIFSIGNALED(wait_status):
        code = 128 + os.WTERMSIG(wait_status)
    elif os.WIFEXITED(wait_status):
        code = os.WEXITSTATUS(wait_status)
    return code


def describe_changes(paths: frozenset[str] | set[str], base: str) -> str:
    """``app.py changed`` or ``3 files changed``, relative to ``base`` where possible."""
    if not paths:
        return "no files changed"
    if len(paths) == 1:
        (path,) = paths
        try:
            shown = os.path.relpath(path, base)
        except ValueError:
            shown = path
        if shown.startswith(".."):
            shown = path
        return f"{shown} changed"
    return f"{len(paths)} files changed"


def speaks_restart_protocol(env: Mapping[str, str], *, library: bool) -> bool:
    """Does a child started with ``env`` use exit status 3 for "restart me" from the start?

    ``run_with_reloader``'s children do (reloadkit's own contract), and so does Django's
    reloader child (``RUN_MAIN=true``: its autoreloader keeps watching after an import error
    and exits 3 on the fix). ``WERKZEUG_RUN_MAIN`` says nothing: reloadkit sets it for every
    child on a TCP socket, gunicorn included; werkzeug's reloader serves before it asks.
    """
    return library or env.get("RUN_MAIN") == "true"
