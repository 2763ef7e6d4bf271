"""Wrappers that do not exec: ``sh -c 'python app.py; ...'``, ``uv run``, ``time``...

reloadkit sets ``LISTEN_PID`` to the pid of the process it starts. A wrapper that starts the
server as a child of its own (instead of replacing itself with it, as ``exec`` does) leaves
``LISTEN_PID`` naming the wrapper, and the consumers that check it — gunicorn, libsystemd's
``sd_listen_fds`` — ignore the sockets: the server binds a port of its own, or fails.

:class:`WrapperCheck` notices it from outside: a descendant of the child holds one of the
held sockets and runs another program than the child (a fork of the child, like gunicorn's
workers, runs the same one). ``--through-wrapper`` is the cure: ``LISTEN_PID`` is left out
(systemfd's ``--no-pid``, enough for consumers that accept its absence), and the ``_hook``
sitecustomize sets it, in the first Python process that finds the sockets, to that process's
own pid (what gunicorn and reloadkit.sockets() check).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

import psutil

__all__ = ["ADOPT_VARIABLE", "WrapperCheck", "process_socket_inodes", "socket_inodes", "wrapped_holder"]

#: Set in the child's environment by ``--through-wrapper``: the hook's cue to adopt LISTEN_PID.
ADOPT_VARIABLE = "RELOADKIT_ADOPT_SOCKETS"
#: Seconds after the start at which the tree is looked at (a wrapper may take a while to
#: start the server: ``uv run`` may first sync the environment).
_CHECK_AFTER = (0.5, 1.0, 2.0, 4.0, 8.0)


def socket_inodes(socks: Sequence[socket.socket]) -> frozenset[int]:
    return frozenset(os.fstat(sock.fileno()).st_ino for sock in socks)


def process_socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets among a process's fds (Linux: /proc/PID/fd); empty when gone."""
    found: set[int] = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return found
    for name in names:
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def wrapped_holder(child_pid: int, inodes: frozenset[int]) -> tuple[psutil.Process, psutil.Process] | None:
    """(the child, a descendant running another program that holds the sockets), or None."""
    try:
        child = psutil.Process(child_pid)
        child_exe = child.exe()
        descendants = child.children(recursive=True)
    except (psutil.Error, OSError):
        return None
    for proc in descendants:
        try:
            if proc.exe() != child_exe and not inodes.isdisjoint(process_socket_inodes(proc.pid)):
                return child, proc
        except (psutil.Error, OSError):
            continue
    return None


class WrapperCheck:
    """Looks at the first generation's tree a few times after its start; says it once."""

    def __init__(self, child_pid: int, started: float, inodes: frozenset[int]) -> None:
        self.child_pid = child_pid
        self.inodes = inodes
        self._due = [started + after for after in _CHECK_AFTER]

    def deadline(self) -> float | None:
        return self._due[0] if self._due else None

    def tick(self, now: float) -> str | None:
        """The one-line warning when it is time to look and a wrapper is found."""
        if not self._due or now < self._due[0]:
            return None
        while self._due and self._due[0] <= now:
            self._due.pop(0)
        found = wrapped_holder(self.child_pid, self.inodes)
        if found is None:
            return None
        self._due = []
        child, holder = found
        try:
            child_name, holder_name = child.name(), holder.name()
        except psutil.Error:
            child_name, holder_name = "?", "?"
        return (
            f"pid {holder.pid} ({holder_name}) holds the sockets, but LISTEN_PID={child.pid} names {child_name},"
            " a wrapper that did not exec it: servers that check LISTEN_PID (gunicorn, libsystemd) ignore the"
            " sockets. Run the server directly, make the wrapper exec it (sh -c '...; exec python app.py'),"
            " or add --through-wrapper"
        )
