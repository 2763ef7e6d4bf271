"""Readiness without the server's help: the probe (a connection of reloadkit's own in the
new generation's queue) tells when a server accepts, so ``--overlap`` switches then, not
when the ``--ready-after`` timer fires; gunicorn is ready when a worker accepts, not when
its arbiter sends READY=1."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support import BIN, LoopingClient, child_pids, start_server, try_get, wait_for, write_file

from reloadkit.net.readiness import diag_available

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not sys.platform.startswith("linux") or not diag_available(), reason="the probe needs sock_diag"),
]



@pytest.mark.parametrize("server", ["uvicorn", "hypercorn", "aiohttp"])
def test_overlap_switches_when_the_new_server_accepts_not_on_the_timer(server_project: Path, server: str) -> None:
    project = server_project
    command = {
        "uvicorn": [str(BIN / "uvicorn"), "--fd", "3", "asgi_app:app"],
        "hypercorn": [str(BIN / "hypercorn"), "--bind", "fd://3", "asgi_app:app"],
        "aiohttp": [sys.executable, "serve_aiohttp.py"],
    }[server]
    with start_server(project, ["127.0.0.1:0"], command, "--overlap", "--ready-after", "30") as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 30, "v0")
        with LoopingClient(url, max_requests=100_000, max_seconds=60) as client:
            for number in (1, 2):
                write_file(project / "version.py", f"VERSION = 'v{number}'\n")
                # long before the 30 s timer
                wait_for(lambda n=number: client.last_body == f"v{n}", 20, f"the client to see v{number}")
                rk.wait_for_output(rf"ready in \d+ ms \(accepting; pid {rk.child_pid(number)}\)", timeout=5)
        assert client.stats["failed"] == 0, client.stats["errors"][:5]
        assert "(timer" not in rk.output
        server_lines = [line for line in rk.output.splitlines() if not line.startswith("reloadkit:")]
        assert not [line for line in server_lines if "error" in line.lower() or "Traceback" in line], server_lines


def test_gunicorn_is_ready_when_a_worker_accepts_not_when_its_arbiter_notifies(server_project: Path) -> None:
    """The workers import the app (here: wait for a release file first) after the arbiter
    sent READY=1; until one of them accepts, the old generation keeps serving."""
    project = server_project
    write_file(project / "gated_app.py", (
        "import os, time\n"
        "while not os.path.exists('release-' + os.environ['RELOADKIT_GENERATION']):\n"
        "    time.sleep(0.01)\n"
        "from wsgi_app import app\n"
    ))
    (project / "release-0").touch()
    command = [str(BIN / "gunicorn"), "-w", "2", "gated_app:app"]
    with start_server(project, ["127.0.0.1:0"], command, "-v", "--overlap", "--ready-after", "30") as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 30, "v0")
        first = rk.wait_for_output(r"ready in \d+ ms \((\w+); pid (\d+)\)")
        assert first.group(1) == "accepting" and int(first.group(2)) == rk.child_pid(0)
        _both_workers_serve(url)  # a worker still booting at the edit would load v1
        write_file(project / "version.py", "VERSION = 'v1'\n")
        rk.wait_for_output(r"started pid \d+ \(generation 1\) beside pid")
        new = rk.child_pid(1)
        rk.wait_for_output(rf"pid {new}: Gunicorn arbiter booted")  # its READY=1 came with this
        wait_for(lambda: len([p for p in child_pids(new)]) == 2, 20, "two workers, importing the app")
        assert try_get(url) == "v0"
        assert rk.count(r"ready in \d+ ms") == 1, rk.output
        (project / "release-1").touch()
        rk.wait_for_output(rf"ready in \d+ ms \(accepting; pid {new}\)", timeout=20)
        wait_for(lambda: try_get(url) == "v1", 20, "v1")


def _both_workers_serve(url: str) -> None:
    pids: set[int] = set()

    def both() -> bool:
        body = try_get(url, "/info")
        if body:
            pids.add(json.loads(body)["pid"])
        return len(pids) == 2

    wait_for(both, 20, "both workers of generation 0 to serve")
