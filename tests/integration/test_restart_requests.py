"""Exit status 3 and the crash back-off, for real: who may ask for a restart, and how often.

Status 3 is werkzeug's and Django's "restart me"; gunicorn exits 3 too, when a worker fails
to boot. Only a child that served before it asked, or one started under the protocol, is
restarted; the back-off slows only a child that asks right after starting, and a save ends
its wait.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from support import Reloadkit, http_get, try_get, wait_for, write_file

pytestmark = pytest.mark.timeout(120)
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))

APP_OK = (
    "def app(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [{body!r}]\n"
)
APP_BROKEN = "def app(environ, start_response):\n    return [b'never' \n"  # '[' was never closed

# A server that answers one request with its generation, then asks for a restart (exit 3),
# as werkzeug's reloader does when a file changes: it served before it asked.
SERVE_ONCE_THEN_3 = """\
import os, socket, sys
listener = socket.socket(fileno=3)
listener.setblocking(True)
generation = os.environ["RELOADKIT_GENERATION"]
while True:
    conn, _ = listener.accept()
    data = conn.recv(65536)
    if not data:  # reloadkit's readiness probe: an end of file, no request
        conn.close()
        continue
    body = f"gen {generation}".encode()
    conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
    conn.close()
    sys.exit(3)
"""

# A child of the protocol (RUN_MAIN=true: Django's reloader child) that asks for a restart
# right after starting while state.py says "bad", and serves once it says otherwise.
ASKS_UNTIL_FIXED = """\
import os, socket, sys
sys.path.insert(0, os.getcwd())
from state import STATE
if STATE == "bad":
    sys.exit(3)
listener = socket.socket(fileno=3)
listener.setblocking(True)
while True:
    conn, _ = listener.accept()
    if conn.recv(65536):
        conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nfixed")
    conn.close()
"""


def _gunicorn_env(tmp_path: Path) -> dict[str, str]:
    # gunicorn >= 23 puts a control socket in $XDG_RUNTIME_DIR (else ~/.gunicorn): keep it here
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    return {"XDG_RUNTIME_DIR": str(run), "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.mark.parametrize("mode", [(), ("--no-warm",)], ids=["warm", "cold"])
def test_gunicorn_boot_error_shows_the_error_page_and_waits_for_a_change(tmp_path: Path, mode: tuple[str, ...]) -> None:
    """gunicorn exits 3 (HALT_WORKER_BOOT_ERROR) when its worker cannot import the app: a crash,
    not a request for a restart. Before: 25 restarts in a row, "asked for a restart right
    after starting; waiting 8 s", never the error page."""
    project = tmp_path / "project"
    project.mkdir()
    write_file(project / "app.py", APP_BROKEN)
    args = ["-b", "127.0.0.1:0", *mode, "--", GUNICORN, "-w", "1", "app:app"]
    with Reloadkit(args, cwd=project, env=_gunicorn_env(tmp_path)) as rk:
        url = rk.wait_listening()[0]
        rk.wait_for_output(r"pid \d+ exited with status 3; waiting for a change", timeout=30)
        status, page = http_get(url, timeout=10)
        assert status == 503 and "was never closed" in page, page[:500]
        write_file(project / "app.py", APP_OK.format(body=b"fixed"))
        wait_for(lambda: try_get(url) == "fixed", 30, "the fixed app to serve")
        write_file(project / "app.py", APP_BROKEN)  # broken again, after a generation that served
        rk.wait_for_output(r"exited with status 3; waiting for a change", count=2, timeout=30)
        write_file(project / "app.py", APP_OK.format(body=b"again"))
        wait_for(lambda: try_get(url) == "again", 30, "the app fixed again to serve")
        assert rk.generations() == 4, rk.output
        assert "asked for a restart" not in rk.output


def test_exit_status_3_right_after_starting_without_the_protocol_is_a_crash(tmp_path: Path) -> None:
    script = tmp_path / "exit3.py"
    script.write_text("import sys; sys.exit(3)\n")
    with Reloadkit(["--", sys.executable, str(script)], cwd=tmp_path) as rk:
        rk.wait_for_output(r"pid \d+ exited with status 3; waiting for a change")
        write_file(tmp_path / "other.py", "X = 1\n")  # a change starts it again: once
        rk.wait_for_output(r"exited with status 3; waiting for a change", count=2)
        assert rk.generations() == 2, rk.output
        assert "asked for a restart" not in rk.output


def test_a_child_that_served_restarts_at_once_however_often_it_asks(tmp_path: Path) -> None:
    """werkzeug's reloader serves, then exits 3 on a change: a save every half second (a
    formatter that rewrites the file) must not make it wait. Before: 0.25, 0.5, 1, 2 s..."""
    script = tmp_path / "serve_once.py"
    script.write_text(SERVE_ONCE_THEN_3)
    with Reloadkit(["-b", "127.0.0.1:0", "--", sys.executable, str(script)], cwd=tmp_path) as rk:
        url = rk.wait_listening()[0]
        for generation in range(6):
            # Once it is ready (its readiness probe was taken): a request queued before the
            # probe would be served first, and the exit would come before reloadkit saw it serve.
            rk.wait_for_output(r"ready in \d+ ms", count=generation + 1)
            assert try_get(url) == f"gen {generation}"
        rk.wait_for_output(r"restarting \(pid \d+ exited with status 3\): started pid \d+ \(generation 6\)")
        assert "asked for a restart right after starting" not in rk.output


def test_a_fix_during_the_back_off_starts_at_once(tmp_path: Path) -> None:
    """A child of the protocol that asks right after starting is slowed down (up to 8 s); the
    save that fixes it ends the wait. Before: the fix waited out the timer."""
    write_file(tmp_path / "state.py", "STATE = 'bad'\n")
    script = tmp_path / "asks.py"
    script.write_text(ASKS_UNTIL_FIXED)
    with Reloadkit(["-b", "127.0.0.1:0", "--", sys.executable, str(script)], cwd=tmp_path,
                   env={"RUN_MAIN": "true"}) as rk:
        url = rk.wait_listening()[0]
        rk.wait_for_output(r"asked for a restart right after starting; waiting 8 s", timeout=60)
        saved = time.monotonic()
        write_file(tmp_path / "state.py", "STATE = 'good'\n")
        wait_for(lambda: try_get(url) == "fixed", 6, "the fix to serve before the 8 s wait ends")
        assert time.monotonic() - saved < 6
