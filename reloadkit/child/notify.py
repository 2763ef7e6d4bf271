"""systemd's notify protocol, the child's side: :func:`notify`, :func:`notify_ready`,
:func:`trigger_reload` and :func:`watch_files`.

The child learns the supervisor's address from ``NOTIFY_SOCKET`` (an address, not an
inherited fd, so no descriptor of the supervisor reaches it). The supervisor's end is
:mod:`reloadkit.net.notifications`. Standard library only: every reload imports this.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

from reloadkit.child.protocol import RELOAD_KEY, WATCH_KEY

__all__ = [
    "MAX_DATAGRAM",
    "RELOAD_KEY",
    "WATCH_KEY",
    "notify",
    "notify_ready",
    "trigger_reload",
    "watch_files",
]

#: The largest datagram either side handles.
MAX_DATAGRAM = 60_000


def notify(state: str) -> bool:
    """Send ``state`` (``KEY=VALUE`` lines) to ``$NOTIFY_SOCKET``; False when there is none.

    Works under systemd too; outside both it is a harmless no-op.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(state.encode("utf-8"), address)
        except OSError:
            return False
    return True


def notify_ready(status: str | None = None) -> bool:
    """Tell the supervisor this process serves now (``READY=1``)."""
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""))


def trigger_reload() -> bool:
    """Ask reloadkit for a restart of this child; False when not running under reloadkit."""
    if not os.environ.get("RELOADKIT_PID"):
        return False
    return notify(f"{RELOAD_KEY}=1")


def watch_files(paths: Iterable[str]) -> bool:
    """Ask reloadkit to watch these files too (import tracking uses this)."""
    if not os.environ.get("RELOADKIT_PID"):
        return False
    lines: list[str] = []
    size = 0
    sent = True
    for path in paths:
        if "\n" in path:
            continue
        line = f"{WATCH_KEY}={path}"
        if size + len(line) + 1 > MAX_DATAGRAM // 2 and lines:
            sent = notify("\n".join(lines)) and sent
            lines, size = [], 0
        lines.append(line)
        size += len(line) + 1
    if lines:
        sent = notify("\n".join(lines)) and sent
    return sent
