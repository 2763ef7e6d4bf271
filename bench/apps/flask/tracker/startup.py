"""Start-up bookkeeping for the benchmark: one line per process that built the app.

Appends ``time pid`` to ``$BENCH_STATE_DIR/starts.log`` when that variable is set (a real app
would not have this; it lets the benchmark count restarts).
"""

from __future__ import annotations

import os
import time


def record_start() -> None:
    state = os.environ.get("BENCH_STATE_DIR")
    if not state:
        return
    fd = os.open(os.path.join(state, "starts.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{time.time():.6f} {os.getpid()} 0 0\n".encode())
    finally:
        os.close(fd)
