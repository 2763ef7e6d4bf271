"""The error page and the live-reload channel over plain HTTP (no browser): real reloadkit,
real child (tests/integration/apps/webapp.py), real sockets."""

from __future__ import annotations

import json
import re
import socket
import sys
from pathlib import Path

import pytest
from support import WEBAPP, Reloadkit, http_get, try_get, wait_for, webapp_project, write_file

pytestmark = pytest.mark.timeout(90)


def _args(*options: str, app: tuple[str, ...] = ()) -> list[str]:
    return ["-v", "-b", "127.0.0.1:0", *options, "--", sys.executable, str(WEBAPP), *app]


def _serves(rk: Reloadkit, text: str) -> None:
    wait_for(lambda: f'<h1 id="text">{text}</h1>' in (try_get(rk.url) or ""), 20, f"the app to serve {text!r}")


def _raw(rk: Reloadkit, request: bytes, timeout: float = 10.0) -> bytes:
    """Send ``request`` on a new connection; everything until the server closes it."""
    with socket.create_connection(("127.0.0.1", rk.port), timeout=timeout) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def _break(rk: Reloadkit, tmp_path: Path, source: str, count: int = 1) -> None:
    write_file(tmp_path / "view.py", source)
    rk.wait_for_output(r"exited with status 1; waiting for a change", count=count)


def test_a_crashed_app_gets_a_503_page_with_the_escaped_stderr_tail(tmp_path: Path) -> None:
    webapp_project(tmp_path)
    with Reloadkit(_args(), cwd=tmp_path) as rk:
        rk.wait_listening()
        _serves(rk, "one")
        _break(rk, tmp_path, "import sys\nprint('<i>noise</i>', file=sys.stderr)\nraise RuntimeError('<b>&boom</b>')\n")
        answer = _raw(rk, b"GET /some/page HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 503 Service Unavailable"
        headers = dict(line.split(": ", 1) for line in lines[1:])
        assert headers["Retry-After"] == "2"
        assert headers["Cache-Control"] == "no-store"
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert int(headers["Content-Length"]) == len(body)
        page = body.decode()
        assert "RuntimeError: &lt;b&gt;&amp;boom&lt;/b&gt;" in page
        assert "&lt;i&gt;noise&lt;/i&gt;" in page and "<b>&boom" not in page and "<i>noise" not in page
        assert "exited with status 1" in page
        assert "<li><code>view.py</code></li>" in page
        assert f"{WEBAPP.name}" in page  # the command
        # JSON clients get JSON, HEAD gets the head only
        assert http_get(rk.url, "/api")[0] == 503
        data = json.loads(_raw(rk, b"GET /api HTTP/1.1\r\nAccept: application/json\r\n\r\n").partition(b"\r\n\r\n")[2])
        assert data["status"] == 1 and data["signal"] is None and data["changed"] == ["view.py"]
        assert data["stderr"][-1] == "RuntimeError: <b>&boom</b>"
        head_only = _raw(rk, b"HEAD / HTTP/1.0\r\n\r\n")
        assert head_only.startswith(b"HTTP/1.1 503") and head_only.endswith(b"\r\n\r\n"), head_only
        # The fix: the app answers again, by itself.
        write_file(tmp_path / "view.py", "TEXT = 'fixed'\n")
        _serves(rk, "fixed")


def test_a_non_http_client_is_not_answered_and_reaches_the_next_generation(tmp_path: Path) -> None:
    webapp_project(tmp_path)
    with Reloadkit(_args(), cwd=tmp_path) as rk:
        rk.wait_listening()
        _serves(rk, "one")
        _break(rk, tmp_path, "TEXT = (\n")
        assert http_get(rk.url)[0] == 503
        with socket.create_connection(("127.0.0.1", rk.port), timeout=30) as conn:
            conn.sendall(b"\x16\x03\x01 not http\r\n\r\n")
            rk.wait_for_output(r"holding a connection that is not HTTP/1\.x")
            conn.setblocking(False)
            with pytest.raises(BlockingIOError):
                conn.recv(1)  # held, not answered
            conn.setblocking(True)
            write_file(tmp_path / "view.py", "TEXT = 'fixed'\n")
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        # wsgiref's own answer to a bad request line (its wording differs between Pythons): the
        # new generation read our bytes
        assert b"<p>Error code: 400</p>" in answer and b"503" not in answer, answer
        rk.wait_for_output(r"relaying a connection held while down")
        _serves(rk, "fixed")


def test_a_request_while_the_fixed_app_starts_waits_for_it(tmp_path: Path) -> None:
    webapp_project(tmp_path)
    with Reloadkit(_args(app=("--start-delay", "1")), cwd=tmp_path) as rk:
        rk.wait_listening()
        _serves(rk, "one")
        _break(rk, tmp_path, "TEXT = (\n")
        assert http_get(rk.url)[0] == 503
        write_file(tmp_path / "view.py", "TEXT = 'fixed'\n")
        rk.wait_for_output(r"started pid \d+ \(generation 2\)")
        # The child sleeps a second before it serves: the request waits in the queue for it.
        status, body = http_get(rk.url, timeout=20)
        assert status == 200 and '<h1 id="text">fixed</h1>' in body


def test_no_error_page_leaves_requests_waiting_for_the_next_generation(tmp_path: Path) -> None:
    webapp_project(tmp_path)
    with Reloadkit(_args("--no-error-page"), cwd=tmp_path) as rk:
        rk.wait_listening()
        _serves(rk, "one")
        _break(rk, tmp_path, "TEXT = (\n")
        with socket.create_connection(("127.0.0.1", rk.port), timeout=30) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            conn.settimeout(0.5)
            with pytest.raises(socket.timeout):
                conn.recv(1)
            conn.settimeout(30)
            write_file(tmp_path / "view.py", "TEXT = 'fixed'\n")
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 200") and b"fixed" in answer


class _Events:
    """A raw reader of the live-reload stream: (event, data) pairs, in order."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.conn = socket.create_connection((host, int(port)), timeout=30)
        self.conn.sendall(b"GET /reloadkit/events HTTP/1.1\r\nHost: x\r\nOrigin: http://elsewhere\r\n\r\n")
        self.buffer = b""
        self.last: tuple[str, dict[str, object]] | None = None
        head = self._until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head and b"Access-Control-Allow-Origin: *" in head

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.conn.recv(65536)
            assert chunk, f"the stream ended: {self.buffer!r}"
            self.buffer += chunk
        item, _, self.buffer = self.buffer.partition(marker)
        return item

    def next(self) -> tuple[str, dict[str, object]]:
        """The next event that differs from the last one (a save may be two file events)."""
        while True:
            block = self._until(b"\n\n").decode()
            fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
            if "event" in fields:
                event = (fields["event"], json.loads(fields["data"]))
                if event != self.last:
                    self.last = event
                    return event

    def close(self) -> None:
        self.conn.close()


def _serving(tmp_path: Path, generation: str) -> bool:
    """Has this generation begun to accept (the readiness reloadkit's probe sees)?"""
    path = tmp_path / "requests.txt"
    return path.exists() and any(line.split()[1:] == [generation, "SERVING"] for line in path.read_text().splitlines())


def test_the_channel_says_ready_only_after_the_new_generation_is(tmp_path: Path) -> None:
    webapp_project(tmp_path)
    with Reloadkit(_args("--livereload", app=("--start-delay", "1")), cwd=tmp_path) as rk:
        rk.wait_listening()
        address = rk.wait_for_output(r"live reload on http://(\S+)/reloadkit/livereload\.js").group(1)
        _serves(rk, "one")
        page = try_get(rk.url) or ""
        assert re.search(rf'<script src="http://{re.escape(address)}/reloadkit/livereload\.js" data-token="0"', page)
        rk.wait_for_output(r"ready in \d+ ms")
        events = _Events(address)
        try:
            assert events.next() == ("state", {"state": "ready", "token": "0"})
            write_file(tmp_path / "view.py", "TEXT = 'two'\n")
            assert events.next() == ("state", {"state": "starting", "token": "0"})
            assert not _serving(tmp_path, "1")  # it sleeps a second before it accepts
            assert events.next() == ("state", {"state": "ready", "token": "1"})
            assert _serving(tmp_path, "1")  # ready: it accepts now
            # A stylesheet: an event, no restart.
            write_file(tmp_path / "static" / "style.css", "h1 { color: rgb(0, 0, 255); }\n")
            assert events.next() == ("css", {"files": ["static/style.css"]})
            # A script: a page reload, no restart. (A late event of the stylesheet's save may
            # come with it: then the page reloads for both, or a css event comes first.)
            write_file(tmp_path / "static" / "app.js", "window.x = 1;\n")
            name, data = events.next()
            while name == "css":
                name, data = events.next()
            assert name == "page" and "static/app.js" in data["files"], (name, data)  # type: ignore[operator]
            # A failed start: "down", not "ready".
            write_file(tmp_path / "view.py", "TEXT = (\n")
            assert events.next() == ("state", {"state": "starting", "token": "1"})
            assert events.next() == ("state", {"state": "down", "token": "down-1"})
        finally:
            events.close()
        assert rk.generations() == 3
        script = http_get(f"http://{address}", "/reloadkit/livereload.js")
        assert script[0] == 200 and "EventSource" in script[1]


def test_under_a_terminal_the_child_still_sees_one_and_the_page_gets_its_stderr(tmp_path: Path) -> None:
    """reloadkit's stderr is a terminal: the child's stderr is a pty of ours, so it sees a
    terminal (colours stay on), its bytes reach the real terminal unchanged, and the page
    shows the tail without the colour codes."""
    from test_hygiene import PtyReloadkit

    app = tmp_path / "tty_app.py"
    app.write_text(
        "import os, sys\n"
        "print(f'stderr-tty={os.isatty(2)} stdout-tty={os.isatty(1)}', file=sys.stderr, flush=True)\n"
        "sys.stderr.write('\\x1b[31mred\\x1b[0m line\\n')\n"
        "sys.stderr.flush()\n"
        "raise RuntimeError('<boom>')\n"
    )
    with PtyReloadkit(["-b", "127.0.0.1:0", "-w", str(tmp_path), "--", sys.executable, str(app)], tmp_path) as rk:
        rk.expect("stderr-tty=True stdout-tty=True")
        rk.expect("\x1b[31mred\x1b[0m line\r\n")  # as written; the newline translated once, by the real terminal
        rk.expect("waiting for a change")
        port = int(re.search(r"listening on http://127\.0\.0\.1:(\d+)", rk.output).group(1))  # type: ignore[union-attr]
        status, page = http_get(f"http://127.0.0.1:{port}")
        assert status == 503
        assert "RuntimeError: &lt;boom&gt;" in page and "red line" in page
        assert "\x1b" not in page and "\r" not in page
