"""The live-reload channel: server-sent events from the supervisor to the open pages.

The supervisor, never the child, serves it, so a stopping child has no open stream to wait
for and the channel lives across generations. Pages learn the state through one event,
``state`` (``starting``, ``ready`` or ``down``, with a *token*: the ready generation's
number, or ``down-N`` for the N-th failure). A page knows the token it was served under
and reloads when the channel reports ``ready`` or ``down`` under another token; while a
generation starts it waits. So a page reloads only once the new generation is ready, and
turns into the error page when the start failed. Static files are events of their own:
``css`` (stylesheets are swapped in place) and ``page`` (the page reloads); they never
restart the server.

Two ways in: an extra listener on a port the supervisor picks (``--livereload``; the
middleware's ``<script>`` points at it), and, while the error page is up, a reserved path
on the app's own held sockets (:data:`ERROR_PAGE_EVENTS`), so the error page returns to the
app by itself even without ``--livereload``.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
from collections.abc import Iterable, Sequence

from reloadkit.browser.httpio import Connection, RequestHead, response
from reloadkit.child.protocol import URL_VARIABLE  # set in the child's environment: HOST:PORT of the channel
from reloadkit.watch.filters import glob_to_regex

__all__ = [
    "CLIENT_JS",
    "DEFAULT_STATIC",
    "ERROR_PAGE_EVENTS",
    "EVENTS_PATH",
    "SCRIPT_PATH",
    "URL_VARIABLE",
    "Channel",
    "LiveReloadServer",
    "StaticRules",
]

#: Files that are live-reload events, never restart triggers: ``*.css`` swaps stylesheets,
#: the rest reloads the page. Matched against the file's name.
DEFAULT_STATIC: tuple[str, ...] = (
    "*.css", "*.js", "*.mjs", "*.map",
    "*.png", "*.jpg", "*.jpeg", "*.gif", "*.svg", "*.webp", "*.avif", "*.ico",
    "*.woff", "*.woff2", "*.ttf", "*.otf",
)
EVENTS_PATH = "/reloadkit/events"
SCRIPT_PATH = "/reloadkit/livereload.js"
ERROR_PAGE_EVENTS = "/.reloadkit/events"
_RETRY_MS = 1000

#: The page side. Configured by its own tag: ``data-token`` (what served this page; without
#: it, the state the page finds first), ``data-events`` (the stream's URL; by default next to
#: the script's ``src``).
CLIENT_JS = r"""(function () {
  var me = document.currentScript;
  if (!me || !window.EventSource || window.__reloadkit) { return; }
  window.__reloadkit = true;
  var token = me.getAttribute("data-token");  // null: a plain tag, the first "ready" names the page's
  var errorPage = token !== null && token.indexOf("down-") === 0;
  var url = me.getAttribute("data-events") || new URL("events", me.src).href;
  function reload() { window.location.reload(); }
  function refreshCss() {
    var links = document.querySelectorAll('link[rel~="stylesheet"][href]');
    Array.prototype.forEach.call(links, function (link) {
      var next = new URL(link.href, window.location.href);
      next.searchParams.set("reloadkit", String(Date.now()));
      var copy = link.cloneNode(false);
      copy.href = next.href;
      copy.onload = copy.onerror = function () { link.remove(); };
      link.after(copy);
    });
  }
  function connect() {
    var source = new EventSource(url);
    source.addEventListener("state", function (event) {
      var state = JSON.parse(event.data);
      window.__reloadkit = "live";  // the stream has answered: from now on no event is missed
      if (token === null) {
        if (state.state === "ready") { token = state.token; return; }
        token = "";
      }
      if ((state.state === "ready" || state.state === "down") && state.token !== token) {
        source.close();
        reload();
      }
    });
    source.addEventListener("css", function () { if (!errorPage) { refreshCss(); } });
    source.addEventListener("page", function () { if (!errorPage) { source.close(); reload(); } });
    source.onerror = function () {
      if (source.readyState !== EventSource.CLOSED) { return; }  // it reconnects by itself
      // Refused for good: on the error page, the app answers that path now; else retry.
      window.setTimeout(errorPage ? reload : connect, 1000);
    };
  }
  connect();
})();
"""

_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
    b"Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n"
)


def _event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class StaticRules:
    """Which changed files are live-reload events: ``css``, ``page`` or neither (restart)."""

    def __init__(self, patterns: Sequence[str] = DEFAULT_STATIC) -> None:
        self.patterns = tuple(patterns)
        self._regexes = [glob_to_regex(pattern) for pattern in self.patterns]

    def is_static(self, path: str) -> bool:
        name = os.path.basename(path)
        return any(regex.match(name) for regex in self._regexes)

    def split(self, paths: Iterable[str]) -> tuple[list[str], list[str], set[str]]:
        """(stylesheets, other static files, the rest: restart triggers)."""
        css: list[str] = []
        page: list[str] = []
        rest: set[str] = set()
        for path in paths:
            if not self.is_static(path):
                rest.add(path)
            elif path.endswith(".css"):
                css.append(path)
            else:
                page.append(path)
        return sorted(css), sorted(page), rest


class Channel:
    """The open event streams, and the state every new one is told first."""

    def __init__(self) -> None:
        self.streams: set[Connection] = set()
        self.state = "starting"
        self.token = ""

    def attach(self, conn: Connection) -> None:
        """Turn ``conn`` (a request for the events) into a stream."""
        conn.on_close = self.streams.discard
        self.streams.add(conn)
        conn.send(_STREAM_HEAD + f"retry: {_RETRY_MS}\n\n".encode() + self._state_event())

    def _state_event(self) -> bytes:
        return _event("state", {"state": self.state, "token": self.token})

    def set_state(self, state: str, token: str | None = None) -> None:
        self.state = state
        if token is not None:
            self.token = token
        self._send(self._state_event())

    def static_changed(self, css: Sequence[str], page: Sequence[str], base: str) -> None:
        shown = [os.path.relpath(path, base) for path in (*css, *page)]
        self._send(_event("page" if page else "css", {"files": shown}))

    def _send(self, data: bytes) -> None:
        for conn in list(self.streams):
            conn.send(data)

    def close(self) -> None:
        for conn in list(self.streams):
            conn.close()


class LiveReloadServer:
    """The extra listener: the page script and the event stream, for any origin."""

    def __init__(self, host: str, port: int, selector: selectors.BaseSelector, channel: Channel) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        from reloadkit.net.binding import listen_tcp

        self.sock = listen_tcp(family, (host, port), 64)
        self.sock.setblocking(False)
        self.selector = selector
        self.channel = channel
        self.conns: set[Connection] = set()
        selector.register(self.sock, selectors.EVENT_READ, self._accept)

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.conns.add(Connection(conn, self.selector, on_head=self._on_head,
                                      on_not_http=lambda c: c.close(), on_close=self.conns.discard))

    def _on_head(self, conn: Connection, head: RequestHead) -> None:
        cors = [("Access-Control-Allow-Origin", "*"), ("Cache-Control", "no-store")]
        if head.method not in ("GET", "HEAD"):
            conn.send(response(405, [*cors, ("Allow", "GET, HEAD")]), close=True)
        elif head.path == EVENTS_PATH and head.method == "GET":
            self.conns.discard(conn)
            self.channel.attach(conn)
        elif head.path == SCRIPT_PATH:
            body = CLIENT_JS.encode()
            conn.send(response(200, [*cors, ("Content-Type", "text/javascript; charset=utf-8")], body,
                               head_only=head.method == "HEAD"), close=True)
        else:
            conn.send(response(404, [*cors, ("Content-Type", "text/plain")], b"not found\n"), close=True)

    def close(self) -> None:
        for conn in list(self.conns):
            conn.close()
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.sock.close()
