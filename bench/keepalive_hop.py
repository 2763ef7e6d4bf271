"""What a kept connection costs per request: one connection kept alive through a reload is
served through the supervisor (net/kept.py); a fresh one goes straight to the server.

Usage: python bench/keepalive_hop.py [--requests N]   (Linux; uvicorn from the test apps)

Runs uvicorn under reloadkit, sends N requests back to back on one connection, edits the app
(the connection is taken over), then N more on that connection and N on a fresh one, and
prints requests per second and the mean time per request of each.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "integration" / "apps" / "servers"
BIN = Path(sys.executable).parent


def _rate(conn: http.client.HTTPConnection, count: int) -> tuple[float, str]:
    started = time.perf_counter()
    body = ""
    for _ in range(count):
        conn.request("GET", "/")
        body = conn.getresponse().read().decode()
    return count / (time.perf_counter() - started), body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    count = parser.parse_args().requests
    work = Path(tempfile.mkdtemp(prefix="rk-hop-"))
    project = work / "app"
    shutil.copytree(APPS, project, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (project / "version.py").write_text("VERSION = 'v0'\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [str(BIN / "uvicorn"), "--fd", "3", "--log-level", "warning", "asgi_app:app"]
    rk = subprocess.Popen([sys.executable, "-m", "reloadkit", "run", "-q", "-b", f"127.0.0.1:{port}", "--", *command],
                          cwd=project, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                _rate(kept, 1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        before, _ = _rate(kept, count)
        (project / "version.py").write_text("VERSION = 'v1'\n")
        deadline = time.monotonic() + 30
        while _rate(kept, 1)[1] != "v1":
            if time.monotonic() > deadline:
                raise RuntimeError("the reload was not seen")
            time.sleep(0.05)
        time.sleep(1)  # the old generation has exited: the connection is the supervisor's now
        after, _ = _rate(kept, count)
        fresh_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        fresh, _ = _rate(fresh_conn, count)
        print(f"{count} requests back to back on one connection, load {os.getloadavg()[0]:.1f}")
        for name, rate in (("direct, before the reload", before), ("kept, after the reload", after),
                           ("fresh connection, after", fresh)):
            print(f"{name:<28} {rate:>8.0f} req/s  {1e6 / rate:>7.0f} us/request")
    finally:
        rk.send_signal(signal.SIGINT)
        rk.wait(15)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
