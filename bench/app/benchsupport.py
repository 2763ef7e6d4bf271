"""Bookkeeping the benchmark needs from the app; a real app would not have it.

``started()`` starts two helper processes, as apps start asset watchers or workers: a plain
``sleep`` (same process group) and a detached one (its own session and process group, so neither Ctrl+C
nor a signal to the app's group reaches it). It then appends ``time pid helper detached`` to
``$BENCH_STATE_DIR/starts.log`` (outside the watched tree) so the benchmark can count
start-ups and look for orphans.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time


def started() -> None:
    null = subprocess.DEVNULL
    helper = subprocess.Popen(["sleep", "1000"], stdin=null, stdout=null, stderr=null)
    detached = subprocess.Popen(["sleep", "1001"], stdin=null, stdout=null, stderr=null, start_new_session=True)
    state = os.environ.get("BENCH_STATE_DIR")
    if state:
        line = f"{time.time():.6f} {os.getpid()} {helper.pid} {detached.pid}\n"
        fd = os.open(os.path.join(state, "starts.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def notify_ready() -> None:
    """systemd's READY=1, sent without importing reloadkit; a no-op without NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(b"READY=1", address)
        except OSError:
            pass


def inherited_fd() -> int | None:
    """fd 3 when a supervisor handed this process its listening socket (LISTEN_FDS)."""
    if os.environ.get("LISTEN_FDS") and os.environ.get("LISTEN_PID") == str(os.getpid()):
        return int(os.environ.get("LISTEN_FDS_FIRST_FD", "3"))
    return None
