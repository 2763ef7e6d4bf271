"""How long one look at a stopping child's connections takes with many TIME_WAIT sockets.

A client looping over a server that closes each connection (gunicorn's sync worker, any
HTTP/1.0 answer) leaves one TIME_WAIT socket a request on the server's side, for a minute.
/proc/net/tcp lists them all; sock_diag with a state mask does not. This makes ``--timewait``
of them on loopback, then times, side by side: psutil's per-process connections (what a drain
look used to call twice), a read of /proc/net/tcp, and one sock_diag dump of the established
connections on a port (what a look asks now).

    python bench/tcp_lookup.py --timewait 30000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's reloadkit

from reloadkit.net.sockdiag import tcp_connections


def _make_timewait(count: int) -> int:
    """``count`` connections the server end closes first; returns how many are in TIME_WAIT."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1024)
        for _ in range(count):
            with socket.create_connection(server.getsockname()) as client:
                conn, _ = server.accept()
                conn.close()  # the server closes first: its end waits in TIME_WAIT
                client.recv(1)
    return sum(1 for line in open("/proc/net/tcp", encoding="ascii") if line.split()[3:4] == ["06"])


def _times(call: Callable[[], object], rounds: int) -> dict[str, float]:
    spent = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        spent.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(spent), 2), "max_ms": round(max(spent), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timewait", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    timewait = _make_timewait(args.timewait)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        with socket.create_connection(server.getsockname()):
            conn, _ = server.accept()
            with conn:
                me = psutil.Process(os.getpid())
                results = {
                    "timewait_sockets": timewait,
                    "psutil_net_connections": _times(lambda: me.net_connections(kind="tcp"), args.rounds),
                    "read_proc_net_tcp": _times(lambda: open("/proc/net/tcp", encoding="ascii").read(), args.rounds),
                    "sock_diag_dump": _times(lambda: tcp_connections([port], info=True), args.rounds),
                }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
