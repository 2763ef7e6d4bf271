"""Just enough HTTP/1.x for the supervisor's own answers (the error page, the live-reload
channel): telling a request head from anything else, and non-blocking connections on the
supervisor's selector. Not a web server: one request a connection, then it is closed.
"""

from __future__ import annotations

import contextlib
import re
import selectors
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

__all__ = ["Connection", "NotHTTPError", "RequestHead", "could_be_request_line", "parse_head", "response"]

MAX_HEAD = 65536
MAX_BUFFERED = 1 << 20  # a stream whose reader stopped reading is closed at this much
_CHUNK = 65536
_METHOD = rb"[A-Z_-]"  # what methods are spelt with in practice (a token may be more, but then: not for us)
_REQUEST_LINE = re.compile(rb"(" + _METHOD + rb"{1,32}) ([^ \r\n]+) HTTP/(1\.[0-9])\r?\n")
_METHOD_PREFIX = re.compile(_METHOD + rb"*")
_TARGET_PREFIX = re.compile(rb"[^ \r\n]*")
_VERSION = b"HTTP/1."
_REASONS = {200: "OK", 204: "No Content", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class NotHTTPError(ValueError):
    """The first bytes of a connection are not an HTTP/1.x request line."""


def could_be_request_line(prefix: bytes) -> bool:
    """Could these first bytes (no newline yet) still become ``METHOD TARGET HTTP/1.x``?"""
    method, space, rest = prefix.partition(b" ")
    if not _METHOD_PREFIX.fullmatch(method) or len(method) > 32:
        return False
    if not space:
        return True
    if not method:
        return False
    target, space, version = rest.partition(b" ")
    if not _TARGET_PREFIX.fullmatch(target):
        return False
    if not space:
        return True
    if not target:
        return False
    if len(version) <= len(_VERSION):
        return _VERSION.startswith(version)
    return version.startswith(_VERSION) and version[7:8].isdigit() and version[8:] in (b"", b"\r")


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names; repeated ones joined

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(urlsplit(self.target).query).items()}

    def accepts_json(self) -> bool:
        """JSON asked for, and preferred to HTML (``Accept: application/json``)."""
        accept = self.headers.get("accept", "").lower()
        return "application/json" in accept and "text/html" not in accept


def parse_head(data: bytes) -> RequestHead | None:
    """The request head at the start of ``data``, or None while it is incomplete.

    Raises :class:`NotHTTPError` as soon as the bytes cannot be an HTTP/1.x request. A head
    longer than :data:`MAX_HEAD` is taken as it is (only a few headers matter here).
    """
    line_end = data.find(b"\n")
    if line_end < 0:
        if len(data) > 8192 or not could_be_request_line(data):
            raise NotHTTPError(data[:40])
        return None
    match = _REQUEST_LINE.match(data[: line_end + 1])
    if match is None:
        raise NotHTTPError(data[:40])
    end = data.find(b"\r\n\r\n")
    end = (end + 4) if end >= 0 else (data.find(b"\n\n") + 2 if data.find(b"\n\n") >= 0 else -1)
    if end < 0 and len(data) < MAX_HEAD:
        return None
    headers: dict[str, str] = {}
    for raw in data[line_end + 1 : end if end >= 0 else MAX_HEAD].split(b"\n"):
        name, colon, value = raw.decode("latin-1").partition(":")
        if colon and name.strip():
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    method, target, version = (part.decode("latin-1") for part in match.groups())
    return RequestHead(method, target, version, headers)


def response(status: int, headers: list[tuple[str, str]], body: bytes = b"", *, head_only: bool = False) -> bytes:
    """A complete ``Connection: close`` response."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


class Connection:
    """One accepted connection on the supervisor's selector, non-blocking both ways.

    Reads until a request head (``on_head``) or until its bytes cannot be HTTP
    (``on_not_http``: it is then left alone, unread, for :meth:`detach`). After a reply
    (:meth:`send` with ``close=True``) it shuts its writing side and reads until the peer
    closes, so the reply is not cut by a reset; a stream stays open until the peer leaves.
    """

    def __init__(
        self,
        sock: socket.socket,
        selector: selectors.BaseSelector,
        *,
        on_head: Callable[[Connection, RequestHead], None],
        on_not_http: Callable[[Connection], None],
        on_close: Callable[[Connection], None],
    ) -> None:
        self.sock = sock
        self.selector = selector
        self.on_head = on_head
        self.on_not_http = on_not_http
        self.on_close = on_close
        self.received = b""
        self.outgoing = b""
        self.head: RequestHead | None = None
        self.reading = True
        self.close_after = False
        self.closed = False
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, self._on_event)

    def _on_event(self) -> None:
        try:
            if self.outgoing:
                self._flush()
            if self.reading and not self.closed:
                self._read()
        except OSError:
            self.close()
            return
        self._update()

    def _read(self) -> None:
        while self.reading and not self.closed:
            try:
                data = self.sock.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                if self.head is None and self.received:
                    # half-closed after its bytes: still somebody's request or message
                    self.reading = False
                    self._judge(eof=True)
                else:
                    self.close()
                return
            if self.head is not None:
                continue  # a request body, or bytes after the head: not ours to use
            self.received += data
            self._judge()

    def _judge(self, eof: bool = False) -> None:
        try:
            head = parse_head(self.received)
        except NotHTTPError:
            self.reading = False
            self.on_not_http(self)
            return
        if head is None and eof:
            head = parse_head(self.received + b"\r\n\r\n")
        if head is not None:
            self.head = head
            self.on_head(self, head)

    def send(self, data: bytes, *, close: bool = False) -> None:
        if self.closed:
            return
        self.outgoing += data
        self.close_after = self.close_after or close
        if len(self.outgoing) > MAX_BUFFERED:
            self.close()
            return
        try:
            self._flush()
        except OSError:
            self.close()
            return
        self._update()

    def _flush(self) -> None:
        while self.outgoing:
            try:
                sent = self.sock.send(self.outgoing)
            except (BlockingIOError, InterruptedError):
                return
            self.outgoing = self.outgoing[sent:]
        if self.close_after:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
            self.reading = True  # to see the peer's end; what it sends is dropped

    def _update(self) -> None:
        if self.closed:
            return
        events = (selectors.EVENT_READ if self.reading else 0) | (selectors.EVENT_WRITE if self.outgoing else 0)
        key = self.selector.get_map().get(self.sock)
        if events and key is None:
            self.selector.register(self.sock, events, self._on_event)
        elif events and key is not None and key.events != events:
            self.selector.modify(self.sock, events, self._on_event)
        elif not events and key is not None:
            self.selector.unregister(self.sock)

    def detach(self) -> tuple[socket.socket, bytes]:
        """Hand the socket and the bytes read from it over (to a relay); forget both."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.closed = True
        self.on_close(self)
        return self.sock, self.received

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.sock.close()
        self.on_close(self)
