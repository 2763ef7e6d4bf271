"""``reloadkit doctor``: what this machine gives reloadkit, one fact a line.

The first thing to ask a user with a problem. Every fact comes from the code that relies on
it (the watcher's inotify binding and limits, the readiness probe's sock_diag, the process
module's subreaper, the mount table the watcher reads), so the report cannot disagree with
what ``reloadkit run`` will do on the same machine. Never fails: an unknown is said as such.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence

from reloadkit import __version__

__all__ = ["facts", "main"]


def _yes(ok: bool, yes: str, no: str) -> str:
    return f"yes ({yes})" if ok else f"no ({no})"


def _inotify_facts() -> list[tuple[str, str]]:
    from reloadkit.watch.inotify import inotify_limits, inotify_unavailable

    if not sys.platform.startswith("linux"):
        return [("inotify", "no (not Linux): watchdog's native observer watches")]
    why_not = inotify_unavailable()
    limits = inotify_limits()
    shown = ", ".join(f"{key}={value if value is not None else 'unknown'}" for key, value in limits.items())
    return [
        ("inotify", "yes" if why_not is None else f"no ({why_not}): reloadkit polls instead"),
        ("inotify limits", shown),
    ]


def _pidfd() -> str:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return "no (this Python or system has no os.pidfd_open)"
    try:
        os.close(opener(os.getpid()))
    except OSError as exc:
        return f"no ({exc.strerror})"
    return "yes (os.pidfd_open)"


def _mount_facts(roots: Sequence[str], mountinfo: str) -> list[tuple[str, str]]:
    from reloadkit.watch.mounts import mount_of, no_events_reason, parse_mountinfo

    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            mounts = parse_mountinfo(f.read())
    except OSError:
        return [("mounts", f"unknown ({mountinfo} unreadable): nothing is polled automatically")]
    lines = []
    for root in roots:
        if not os.path.exists(root):
            lines.append((f"watch {root}", "not found"))
            continue
        mount = mount_of(os.path.realpath(root), mounts)
        reason = no_events_reason(mount) if mount is not None else None
        where = f"{mount.fstype} at {mount.mount_point}" if mount is not None else "no mount found"
        lines.append((f"watch {root}", f"polled ({reason})" if reason else f"events ({where})"))
    others = sorted({m.mount_point: no_events_reason(m) for m in mounts if no_events_reason(m)}.items())
    shown = "; ".join(f"{point} ({reason})" for point, reason in others) or "none"
    lines.append(("mounts polled when watched", shown))
    return lines


def facts(roots: Sequence[str] = (".",), mountinfo: str | None = None) -> list[tuple[str, str]]:
    """Every fact as (name, value), in the order printed. ``roots``: the paths that would be
    watched (``reloadkit run``'s default is the current directory)."""
    from reloadkit.net.readiness import diag_available
    from reloadkit.proc.process import become_subreaper
    from reloadkit.watch.mounts import MOUNTINFO

    try:
        import watchdog.version

        watchdog_version = watchdog.version.VERSION_STRING
    except ImportError:
        watchdog_version = "not installed"
    package = os.path.dirname(os.path.abspath(__file__))
    return [
        ("reloadkit", f"{__version__} ({package})"),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("system", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("watchdog", watchdog_version),
        *_inotify_facts(),
        ("sock_diag", _yes(diag_available(), "a new generation is ready when it accepts reloadkit's probe",
                           "READY=1, else the --ready-after timer, says a new generation is ready")),
        ("subreaper", _yes(become_subreaper(), "orphaned grandchildren are re-parented to reloadkit and ended",
                           "a double-forked daemon escapes the process tree")),
        ("pidfd", _pidfd()),
        *_mount_facts(roots, MOUNTINFO if mountinfo is None else mountinfo),
    ]


def main(argv: Sequence[str]) -> int:
    """``reloadkit doctor [PATH...]``: print the facts; exit status 0."""
    if "-h" in argv or "--help" in argv:
        print("usage: reloadkit doctor [PATH...]  (PATH: what would be watched; default: the current directory)")
        return 0
    options = [arg for arg in argv if arg.startswith("-")]
    if options:
        print(f"reloadkit: error: doctor takes paths, not options: {' '.join(options)}", file=sys.stderr)
        return 2
    text = "".join(f"{name}: {value}\n" for name, value in facts(list(argv) or ["."]))
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `reloadkit doctor | head -3`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0
