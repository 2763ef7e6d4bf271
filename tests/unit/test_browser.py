"""The browser side without processes: request heads, the page, static files, the channel, options."""

from __future__ import annotations

import json
import selectors
import socket

import pytest

from reloadkit.browser.errorpage import Failure, describe_exit, render_html, render_json
from reloadkit.browser.httpio import Connection, NotHTTPError, could_be_request_line, parse_head, response
from reloadkit.browser.livereload import Channel, StaticRules
from reloadkit.cli import parse_args
from reloadkit.errors import ConfigError

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("prefix", [b"", b"G", b"GET", b"GET ", b"GET /x", b"GET /x ", b"GET /x HTTP/", b"GET /x HTTP/1.1",
                                    b"GET /x HTTP/1.1\r", b"OPTIONS * HTTP/1.0"])
def test_prefixes_that_may_still_be_a_request_line(prefix: bytes) -> None:
    assert could_be_request_line(prefix)


@pytest.mark.parametrize("prefix", [b"\x16\x03\x01", b" GET", b"GET  /", b"GET /x HTTP/2", b"PRI * HTTP/2.0",
                                    b"GET /x HTTP/1.1x", b"SSH-2.0-OpenSSH", b"\x00\x01", b"A" * 40])
def test_prefixes_that_cannot(prefix: bytes) -> None:
    assert not could_be_request_line(prefix)


def test_parse_head() -> None:
    assert parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n") is None  # not complete yet
    head = parse_head(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody")
    assert head is not None
    assert (head.method, head.path, head.query, head.version) == ("GET", "/a/b", {"x": "1", "y": "2"}, "1.1")
    assert head.headers["x-a"] == "1, 2" and head.accepts_json()
    bare = parse_head(b"HEAD / HTTP/1.0\n\n")
    assert bare is not None and bare.method == "HEAD" and not bare.accepts_json()
    with pytest.raises(NotHTTPError):
        parse_head(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    with pytest.raises(NotHTTPError):
        parse_head(b"\x16\x03\x01\x02\x00")
    browser = parse_head(b"GET / HTTP/1.1\r\nAccept: text/html,application/xhtml+xml,application/json;q=0.9\r\n\r\n")
    assert browser is not None and not browser.accepts_json()


def test_response() -> None:
    data = response(503, [("Retry-After", "2")], b"body")
    assert data == b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody"
    assert response(503, [], b"body", head_only=True).endswith(b"Content-Length: 4\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize(("status", "text"), [
    (1, "exited with status 1"), (0, "exited with status 0"),
    (139, "killed by SIGSEGV (status 139)"), (137, "killed by SIGKILL (status 137)"), (200, "exited with status 200"),
    (None, "could not be started"),
])
def test_describe_exit(status: int | None, text: str) -> None:
    assert describe_exit(status) == text


def _failure(**changes: object) -> Failure:
    values: dict[str, object] = {
        "command": ["python", "app.py", "--name=<x>"], "status": 1, "changed": ["/p/view.py", "/elsewhere/y.py"],
        "stderr": ["\x1b[31mTraceback\x1b[0m", 'raise RuntimeError("<b>&boom</b>")', "x" * 5000], "token": "down-3",
        "base": "/p",
    }
    values.update(changes)
    return Failure.build(**values)  # type: ignore[arg-type]


def test_the_page_escapes_everything_and_strips_colours() -> None:
    failure = _failure()
    assert failure.changed == ("/elsewhere/y.py", "view.py")
    page = render_html(failure).decode()
    assert "&lt;b&gt;&amp;boom&lt;/b&gt;" in page and "<b>&boom" not in page
    assert "--name=&lt;x&gt;" in page
    assert "\x1b" not in page and "Traceback" in page
    assert "x" * 1000 in page and "x" * 1001 not in page  # very long lines are cut
    assert 'data-token="down-3"' in page and 'data-events="/.reloadkit/events"' in page
    assert "exited with status 1" in page


def test_the_json_body() -> None:
    data = json.loads(render_json(_failure(status=139)))
    assert data["status"] == 139 and data["signal"] == "SIGSEGV" and data["summary"] == "killed by SIGSEGV (status 139)"
    assert data["command"] == ["python", "app.py", "--name=<x>"]
    assert data["stderr"][1] == 'raise RuntimeError("<b>&boom</b>")'


def test_static_rules() -> None:
    rules = StaticRules()
    css, page, rest = rules.split({"/p/static/a.css", "/p/app.js", "/p/img/logo.PNG", "/p/img/logo.png", "/p/view.py",
                                   "/p/templates/index.html"})
    assert css == ["/p/static/a.css"]
    assert page == ["/p/app.js", "/p/img/logo.png"]
    assert rest == {"/p/view.py", "/p/templates/index.html", "/p/img/logo.PNG"}
    assert StaticRules(("*.txt",)).split({"/p/a.txt"}) == ([], ["/p/a.txt"], set())


def _stream_pair() -> tuple[socket.socket, Connection, selectors.DefaultSelector]:
    left, right = socket.socketpair()
    selector = selectors.DefaultSelector()
    conn = Connection(right, selector, on_head=lambda c, h: None, on_not_http=lambda c: None, on_close=lambda c: None)
    return left, conn, selector


def _read_all(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_the_channel_tells_each_stream_the_state_first_then_every_change() -> None:
    channel = Channel()
    channel.set_state("ready", "4")
    left, conn, selector = _stream_pair()
    try:
        channel.attach(conn)
        channel.set_state("starting")
        channel.static_changed(["/p/a.css"], [], "/p")
        channel.static_changed(["/p/a.css"], ["/p/b.js"], "/p")
        channel.set_state("down", "down-1")
        data = _read_all(left).decode()
        assert data.startswith("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        events = [block for block in data.split("\r\n\r\n", 1)[1].split("\n\n") if block.startswith("event")]
        assert events == [
            'event: state\ndata: {"state":"ready","token":"4"}',
            'event: state\ndata: {"state":"starting","token":"4"}',
            'event: css\ndata: {"files":["a.css"]}',
            'event: page\ndata: {"files":["a.css","b.js"]}',
            'event: state\ndata: {"state":"down","token":"down-1"}',
        ]
        left.close()
        for key, _ in selector.select(1):
            key.data()
        assert conn.closed and not channel.streams  # the page went away: the stream is gone
    finally:
        channel.close()
        left.close()
        selector.close()


def test_options_and_variables() -> None:
    config = parse_args(["run", "--", "app"], environ={})
    assert (config.error_page, config.livereload, config.livereload_port, config.livereload_static) == (True, False, 0, ())
    config = parse_args(["run", "--no-error-page", "--livereload", "--livereload-port", "35729",
                         "--livereload-static", "*.txt", "--", "app"], environ={})
    assert (config.error_page, config.livereload, config.livereload_port, config.livereload_static) == (
        False, True, 35729, ("*.txt",))
    env = {"RELOADKIT_ERROR_PAGE": "0", "RELOADKIT_LIVERELOAD": "yes", "RELOADKIT_LIVERELOAD_PORT": "4000"}
    config = parse_args(["run", "--", "app"], environ=env)
    assert (config.error_page, config.livereload, config.livereload_port) == (False, True, 4000)
    config = parse_args(["run", "--livereload-port", "5000", "--", "app"], environ=env)
    assert config.livereload_port == 5000  # the command line wins
    with pytest.raises(ConfigError, match="RELOADKIT_ERROR_PAGE"):
        parse_args(["run", "--", "app"], environ={"RELOADKIT_ERROR_PAGE": "maybe"})
    with pytest.raises(ConfigError, match="not a port"):
        parse_args(["run", "--livereload-port", "70000", "--", "app"], environ={})
