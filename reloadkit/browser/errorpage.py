"""The browser side of the supervisor: an error page while the app is down, live reload.

While no generation serves because the last one exited (a crash, an exit status, a start
that failed), the supervisor accepts on the held listening sockets itself and answers each
HTTP/1.x request with ``503 Service Unavailable``: the command, how it ended, the changed
files that led here and the last lines of its stderr. Connections whose first bytes are
not an HTTP/1.x request line are not answered: they are held, with what they sent, and
relayed to the next generation. Once a generation starts, the sockets are left to it
again (a request then waits in the queue, as always); the page itself waits on the
live-reload channel and reloads when the new generation is ready, never before.

:class:`Browser` is what the supervisor talks to: ``starting``, ``ready``, ``down`` and the
changed files; the rest is here and in :mod:`reloadkit.browser.livereload`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import json
import os
import re
import selectors
import shlex
import signal
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

from reloadkit.browser.httpio import Connection, RequestHead, response
from reloadkit.browser.livereload import (
    CLIENT_JS,
    DEFAULT_STATIC,
    ERROR_PAGE_EVENTS,
    SCRIPT_PATH,
    URL_VARIABLE,
    Channel,
    LiveReloadServer,
    StaticRules,
)
from reloadkit.browser.tracebacks import Summary, summarize
from reloadkit.config.settings import Config
from reloadkit.net.handover import Succession, take_queued

__all__ = ["Browser", "ErrorPage", "Failure", "describe_exit", "render_html", "render_json"]

RETRY_AFTER = 2
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_MAX_LINE = 1000

Relay = Callable[[Succession, socket.socket, bytes], None]


def describe_exit(status: int | None, error: str | None = None) -> str:
    """``exited with status 1``, ``killed by SIGSEGV (status 139)``, or why it never started."""
    if status is None:
        return error or "could not be started"
    if status > 128:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(status - 128).name} (status {status})"
    return f"exited with status {status}"


@dataclass(frozen=True)
class Failure:
    """Why no generation serves: what the page shows."""

    command: tuple[str, ...]
    status: int | None  # None: the command could not be started
    changed: tuple[str, ...]  # relative to the working directory where possible
    stderr: tuple[str, ...]
    token: str  # ``down-N``: the page's place in the live-reload channel
    error: str | None = None
    raised: Summary | None = None  # the exception and the user's frames, from stderr's traceback
    base: str = ""
    bind_failed: str | None = None  # it could not bind a held address: the fix is the command line (bindcheck.py)

    @property
    def summary(self) -> str:
        return describe_exit(self.status, self.error)

    @property
    def signal(self) -> str | None:
        if self.status is not None and self.status > 128:
            with contextlib.suppress(ValueError):
                return signal.Signals(self.status - 128).name
        return None

    @classmethod
    def build(
        cls, command: Sequence[str], status: int | None, changed: Iterable[str], stderr: Iterable[str],
        token: str, base: str, error: str | None = None, roots: Sequence[str] = (),
    ) -> Failure:
        shown = []
        for path in sorted(changed):
            relative = os.path.relpath(path, base) if os.path.isabs(path) else path
            shown.append(path if relative.startswith("..") else relative)
        lines = tuple(_ANSI.sub("", line)[:_MAX_LINE] for line in stderr)
        return cls(tuple(command), status, tuple(shown), lines, token, error, summarize(lines, roots, base), base)


def render_json(failure: Failure) -> bytes:
    return json.dumps({
        "error": "the app is not running",
        "command": list(failure.command),
        "status": failure.status,
        "signal": failure.signal,
        "summary": failure.summary,
        "changed": list(failure.changed),
        "stderr": list(failure.stderr),
        "bind_failed": failure.bind_failed,
        "exception": failure.raised.exception if failure.raised else None,
        "your_frames": [
            {"file": frame.file, "line": frame.line, "name": frame.name, "source": list(frame.source)}
            for frame in (failure.raised.frames if failure.raised else ())
        ],
    }, indent=2).encode() + b"\n"


_STYLE = """body{font:15px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
h1{font-size:1.3rem;color:#a00}code,pre{font:13px/1.35 ui-monospace,monospace}
pre{background:#f6f6f6;border:1px solid #ddd;padding:.8rem;overflow-x:auto;white-space:pre-wrap}
.note{color:#666;font-size:.9rem}h2{font-size:1.15rem}#raised pre{border-color:#d99;background:#fff6f6}
#raised h2 code{font-size:1.1rem;color:#a00}"""


def _raised_html(failure: Failure) -> str:
    """The exception and the user's frames, innermost first: above the whole stderr."""
    if failure.raised is None:
        return ""
    esc = html.escape
    frames = "".join(f"<pre>{esc(frame.display(failure.base))}</pre>" for frame in failure.raised.frames)
    return (f'<section id="raised"><h2><code>{esc(failure.raised.exception)}</code></h2>'
            f"<p>In your code (innermost first):</p>{frames}</section>")


def _fix_html(failure: Failure) -> str:
    """What to do: fix the code; or, when the command could not bind the held address, the
    command line (no edit of the code brings the app back)."""
    if failure.bind_failed:
        return (f'<section id="bind-failed"><h2>The command does not serve the address reloadkit holds</h2>'
                f"<p>{html.escape(failure.bind_failed)}</p><p class=\"note\">Change the command line and restart"
                " reloadkit: an edit of the code starts the same command, which fails the same way.</p></section>")
    return ('<p class="note">reloadkit answers while the app is down. Fix the code: this page turns back into the\n'
            "app by itself as soon as the new version is ready.</p>")


def render_html(failure: Failure) -> bytes:
    esc = html.escape
    changed = "".join(f"<li><code>{esc(path)}</code></li>" for path in failure.changed) or "<li>(none: the first start)</li>"
    stderr = esc("\n".join(failure.stderr)) if failure.stderr else "(nothing)"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reloadkit: the app is down</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body><h1>The app is not running: it {esc(failure.summary)}</h1>
{_raised_html(failure)}<p>Command: <code>{esc(shlex.join(failure.command))}</code></p>
<p>Changed files that led here:</p><ul>{changed}</ul>
<p>The last lines of its stderr:</p><pre id="stderr">{stderr}</pre>
{_fix_html(failure)}
<script data-token="{esc(failure.token)}" data-events="{ERROR_PAGE_EVENTS}">{CLIENT_JS}</script>
</body></html>
"""
    return page.encode()


class ErrorPage:
    """Answers on the held sockets while it is shown; hands every unanswered connection on."""

    def __init__(self, selector: selectors.BaseSelector, successions: Sequence[Succession],
                 relay: Relay, channel: Channel, log: Callable[[str], None]) -> None:
        self.selector = selector
        self.successions = list(successions)
        self.relay = relay
        self.channel = channel
        self.log = log
        self.failure: Failure | None = None
        self.listening: list[socket.socket] = []
        self.waiting: dict[Connection, Succession] = {}  # no reply yet: the next generation's if it starts
        self.replying: set[Connection] = set()

    def show(self, failure: Failure) -> None:
        self.failure = failure
        for succession in self.successions:
            sock = succession.current
            if sock in self.listening:
                continue
            self.listening.append(sock)
            self.selector.register(sock, selectors.EVENT_READ, lambda succession=succession: self._accept(succession))
            self._accept(succession)  # what queued before

    def hide(self) -> None:
        """A generation starts: the sockets are its own again, and so is every connection
        that got no reply (non-HTTP ones, idle ones, half-sent requests)."""
        self.failure = None
        for sock in self.listening:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(sock)
        self.listening.clear()
        for conn, succession in list(self.waiting.items()):
            sock, received = conn.detach()
            self.relay(succession, sock, received)
        self.waiting.clear()

    def _accept(self, succession: Succession) -> None:
        for sock in take_queued(succession.current):
            conn = Connection(sock, self.selector, on_head=self._on_head, on_not_http=self._on_not_http,
                              on_close=self._forget)
            self.waiting[conn] = succession

    def _forget(self, conn: Connection) -> None:
        self.waiting.pop(conn, None)
        self.replying.discard(conn)

    def _on_not_http(self, conn: Connection) -> None:
        self.log(f"holding a connection that is not HTTP/1.x ({conn.received[:16]!r}) for the next generation")

    def _on_head(self, conn: Connection, head: RequestHead) -> None:
        failure = self.failure
        if failure is None:  # pragma: no cover - hidden between the read and this call
            return
        del self.waiting[conn]
        if head.path == ERROR_PAGE_EVENTS and head.method == "GET":
            self.channel.attach(conn)
            return
        self.replying.add(conn)
        headers = [("Retry-After", str(RETRY_AFTER)), ("Cache-Control", "no-store")]
        if head.accepts_json():
            headers.append(("Content-Type", "application/json"))
            body = render_json(failure)
        else:
            headers.append(("Content-Type", "text/html; charset=utf-8"))
            body = render_html(failure)
        conn.send(response(503, headers, body, head_only=head.method == "HEAD"), close=True)

    def close(self) -> None:
        for sock in self.listening:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(sock)
        self.listening.clear()
        for conn in [*self.waiting, *self.replying]:
            conn.close()


class Browser:
    """What the supervisor tells the browser side, and what it asks of it."""

    def __init__(self, config: Config, selector: selectors.BaseSelector, successions: Sequence[Succession],
                 *, relay: Relay, info: Callable[[str], None], debug: Callable[[str], None]) -> None:
        self.config = config
        self.channel = Channel()
        self.error_page = ErrorPage(selector, successions, relay, channel=self.channel, log=debug) if config.error_page else None
        self.static = StaticRules((*DEFAULT_STATIC, *config.livereload_static)) if config.livereload else None
        self.server: LiveReloadServer | None = None
        if config.livereload:
            self.server = LiveReloadServer(_channel_host(successions), config.livereload_port, selector, self.channel)
            info(f"live reload on http://{self.server.address}{SCRIPT_PATH}")
        self.changed: tuple[str, ...] = ()
        self.failures = 0

    def learned(self, succession: Succession) -> None:
        """An address the command bound, held from now on (bind adoption): the page answers there too."""
        if self.error_page is not None:
            self.error_page.successions.append(succession)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def wants_stderr(self) -> bool:
        """The error page shows the child's stderr: it must pass through us (when there is a
        page: a socket to answer on, and a next generation to wait for)."""
        return self.error_page is not None and self.config.reload and bool(self.error_page.successions)

    @property
    def watch_patterns(self) -> tuple[str, ...]:
        """Extra files the watcher reports: the static ones, as live-reload events."""
        return self.static.patterns if self.static is not None else ()

    def child_environment(self) -> dict[str, str]:
        return {URL_VARIABLE: self.server.address} if self.server is not None else {}

    def starting(self, changed: Iterable[str]) -> None:
        self.changed = tuple(changed)
        if self.error_page is not None:
            self.error_page.hide()
        self.channel.set_state("starting")

    def ready(self, generation: int) -> None:
        self.channel.set_state("ready", str(generation))

    def down(self, status: int | None, stderr: Iterable[str], error: str | None = None,
             bind_failed: str | None = None) -> None:
        """No generation serves until the next change."""
        if self.error_page is None or not self.config.reload:
            return  # pages wait for the next ready generation
        self.failures += 1
        token = f"down-{self.failures}"
        failure = Failure.build(self.config.command, status, self.changed, stderr, token, self.config.cwd, error,
                                self.config.watch_roots)
        if bind_failed:
            failure = dataclasses.replace(failure, bind_failed=bind_failed)
        self.error_page.show(failure)
        self.channel.set_state("down", token)

    def split_changes(self, paths: set[str]) -> set[str]:
        """The restart triggers among ``paths``; static files alone become live-reload events."""
        if self.static is None:
            return paths
        css, page, rest = self.static.split(paths)
        if not rest and (css or page):
            self.channel.static_changed(css, page, self.config.cwd)
        return rest

    def close(self) -> None:
        if self.error_page is not None:
            self.error_page.close()
        self.channel.close()
        if self.server is not None:
            self.server.close()


def _channel_host(successions: Sequence[Succession]) -> str:
    """The live-reload listener goes where the app listens (its first TCP address)."""
    for succession in successions:
        if succession.listener.is_tcp:
            host = str(succession.current.getsockname()[0])
            return host
    return "127.0.0.1"
