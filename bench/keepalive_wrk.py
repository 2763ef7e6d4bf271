"""Keep-alive clients across reloads: ``wrk -t2 -c16 -d12s`` against a real server under
reloadkit while the app is edited 10 times; wrk's socket errors per server and mode.

Usage: python bench/keepalive_wrk.py [SERVER ...] [--modes default,overlap]

16 kept-alive connections: a server that closes its idle keep-alive connections when told
to stop costs up to 16 read errors per reload (a request sent on a closing connection).
Needs Debian's ``wrk`` on PATH. Run from the repository (the servers' test apps are used).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "integration" / "apps" / "servers"
BIN = Path(sys.executable).parent
SERVERS = {
    "uvicorn --fd 3": [str(BIN / "uvicorn"), "--fd", "3", "--log-level", "warning", "asgi_app:app"],
    "hypercorn fd://3": [str(BIN / "hypercorn"), "--bind", "fd://3", "asgi_app:app"],
    "daphne --fd 3": [str(BIN / "daphne"), "--fd", "3", "asgi_app:application"],
    "aiohttp": [sys.executable, "serve_aiohttp.py"],
    "waitress": [sys.executable, "serve_waitress.py"],
    "gunicorn sync": [str(BIN / "gunicorn"), "wsgi_app:app"],
    "gunicorn gthread": [str(BIN / "gunicorn"), "-k", "gthread", "--threads", "4", "wsgi_app:app"],
}
EDITS = 10
DURATION = 12


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def run_one(server: str, mode: str) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="rk-wrk-"))
    project = work / "app"
    shutil.copytree(APPS, project, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (project / "version.py").write_text("VERSION = 'v0'\n")
    (work / "run").mkdir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "XDG_RUNTIME_DIR": str(work / "run"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "reloadkit", "run", "-q", "-b", f"127.0.0.1:{port}"]
    args += ["--overlap"] if mode == "overlap" else []
    rk = subprocess.Popen([*args, "--", *SERVERS[server]], cwd=project, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server} did not answer")
            time.sleep(0.1)

        def edit() -> None:
            time.sleep(0.5)
            for number in range(1, EDITS + 1):
                (project / "version.py").write_text(f"VERSION = 'v{number}'\n")
                time.sleep((DURATION - 1.5) / EDITS)

        editor = threading.Thread(target=edit)
        editor.start()
        out = subprocess.run(["wrk", "-t2", "-c16", f"-d{DURATION}s", url], capture_output=True, text=True,
                             check=True).stdout
        editor.join()
    finally:
        rk.send_signal(signal.SIGINT)
        try:
            rk.wait(15)
        except subprocess.TimeoutExpired:
            rk.kill()
            rk.wait()
        shutil.rmtree(work, ignore_errors=True)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "server": server, "mode": mode,
        "connect": int(errors.group(1)) if errors else 0, "read": int(errors.group(2)) if errors else 0,
        "write": int(errors.group(3)) if errors else 0, "timeout": int(errors.group(4)) if errors else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0, "rps": float(rate.group(1)) if rate else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("servers", nargs="*", default=list(SERVERS))
    parser.add_argument("--modes", default="default,overlap")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not on PATH (Debian: apt-get install wrk)")
    print(f"wrk -t2 -c16 -d{DURATION}s, {EDITS} edits; load {os.getloadavg()[0]:.1f}")
    print(f"{'server':<20} {'mode':<8} {'read':>5} {'connect':>7} {'write':>5} {'timeout':>7} {'non-2xx':>7} {'req/s':>8}")
    for server in options.servers:
        for mode in options.modes.split(","):
            r = run_one(server, mode)
            print(f"{server:<20} {mode:<8} {r['read']:>5} {r['connect']:>7} {r['write']:>5} {r['timeout']:>7}"
                  f" {r['non2xx']:>7} {r['rps']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
