"""Live reload for the pages of a WSGI, ASGI or Django app: one ``<script>`` in HTML responses.

Child-side and cheap to import (the standard library's ``os`` and ``re`` only). Inert
unless the app runs under ``reloadkit run --livereload`` (the supervisor sets
``RELOADKIT_LIVERELOAD_URL``): elsewhere every response passes through untouched.

It only touches complete HTML responses: ``Content-Type: text/html``, no
``Content-Encoding``, a body known in full (WSGI: a list or a ``Content-Length``; ASGI: a
single body message; Django: not streaming), and fixes ``Content-Length``. Streams and
compressed bodies are left alone.

* WSGI (Flask, Django's WSGI handler, anything): ``app = LiveReloadMiddleware(app)``
  (Flask: ``app.wsgi_app = LiveReloadMiddleware(app.wsgi_app)``).
* ASGI (FastAPI, Starlette, Django's ASGI handler): ``app = ASGILiveReloadMiddleware(app)``,
  or ``app.add_middleware(ASGILiveReloadMiddleware)``.
* Django: ``"reloadkit.middleware.DjangoLiveReloadMiddleware"`` in ``MIDDLEWARE``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from reloadkit.child.protocol import URL_VARIABLE

__all__ = [
    "ASGILiveReloadMiddleware",
    "DjangoLiveReloadMiddleware",
    "LiveReloadMiddleware",
    "inject",
    "script_tag",
]

_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)
_HTML_END = re.compile(rb"</html\s*>", re.IGNORECASE)
_WILDCARDS = ("0.0.0.0", "::", "[::]", "")
_NO_BODY = (204, 304)


def script_tag(request_host: str | None = None) -> bytes | None:
    """The tag that connects a page to the channel, or None outside ``reloadkit --livereload``.

    ``request_host`` (the request's ``Host``) names the channel's host when the supervisor
    listens on every address, so a page opened from another machine finds it too.
    """
    address = os.environ.get(URL_VARIABLE)
    if not address:
        return None
    host, _, port = address.rpartition(":")
    if host in _WILDCARDS and request_host:
        name = request_host.strip()
        if name.startswith("["):
            host = name[: name.find("]") + 1]
        else:
            host = name.split(":", 1)[0]
    elif host in _WILDCARDS:
        host = "127.0.0.1"
    token = os.environ.get("RELOADKIT_GENERATION", "")
    return (f'<script src="http://{host}:{port}/reloadkit/livereload.js" data-token="{token}" async>'
            "</script>").encode()


def inject(body: bytes, tag: bytes) -> bytes:
    """``tag`` before the last ``</body>`` (else ``</html>``, else at the end)."""
    for pattern in (_BODY_END, _HTML_END):
        last = None
        for last in pattern.finditer(body):  # noqa: B007 - the last one is wanted
            pass
        if last is not None:
            return body[: last.start()] + tag + body[last.start() :]
    return body + tag


def _is_html(content_type: str | None, encoding: str | None) -> bool:
    if encoding and encoding.strip().lower() not in ("", "identity"):
        return False
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() in ("text/html", "application/xhtml+xml")


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class LiveReloadMiddleware:
    """WSGI middleware: the live-reload script in complete HTML responses."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        tag = script_tag(environ.get("HTTP_HOST"))
        if tag is None or environ.get("REQUEST_METHOD") == "HEAD":
            return self.app(environ, start_response)
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            if exc_info is not None and captured and captured[0] is None:
                raise exc_info[1].with_traceback(exc_info[2])
            captured[:] = [status, headers, exc_info]
            write: list[Callable[[bytes], Any]] = []

            def legacy_write(data: bytes) -> Any:  # the old write() API: pass through untouched
                if not write:
                    write.append(start_response(*captured))
                    captured[:] = [None]
                return write[0](data)

            return legacy_write

        result = self.app(environ, capture)
        if not captured or captured[0] is None:
            return result  # nothing to change (write() was used)
        status, headers, exc_info = captured
        names = {name.lower(): value for name, value in headers}
        code = int(status.split(" ", 1)[0]) if status[:3].isdigit() else 200
        known = isinstance(result, (list, tuple)) or "content-length" in names
        if not known or code in _NO_BODY or not _is_html(names.get("content-type"), names.get("content-encoding")):
            start_response(status, headers, exc_info)
            return result
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        body = inject(body, tag)
        headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers, exc_info)
        return [body]


ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class ASGILiveReloadMiddleware:
    """ASGI middleware: the live-reload script in HTML responses sent in one body message."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope.get("type") != "http" or scope.get("method") == "HEAD":
            await self.app(scope, receive, send)
            return
        host = next((value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"host"), None)
        tag = script_tag(host)
        if tag is None:
            await self.app(scope, receive, send)
            return
        held: list[Any] = []  # the response start, until the first body message decides

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {bytes(name).lower(): bytes(value).decode("latin-1") for name, value in message.get("headers", [])}
                if message.get("status") in _NO_BODY or not _is_html(names.get(b"content-type"), names.get(b"content-encoding")):
                    await send(message)
                else:
                    held.append(message)
                return
            if message["type"] == "http.response.body" and held:
                start = held.pop()
                if message.get("more_body", False):  # a stream: as it is
                    await send(start)
                    await send(message)
                    return
                body = inject(bytes(message.get("body", b"")), tag)
                headers = [(name, value) for name, value in start.get("headers", []) if bytes(name).lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({**message, "body": body})
                return
            await send(message)

        await self.app(scope, receive, wrapped)


class DjangoLiveReloadMiddleware:
    """Django middleware (``MIDDLEWARE``): the live-reload script in complete HTML responses."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        tag = script_tag(request.META.get("HTTP_HOST"))
        if (
            tag is None
            or request.method == "HEAD"
            or getattr(response, "streaming", False)
            or response.status_code in _NO_BODY
            or not _is_html(response.get("Content-Type"), response.get("Content-Encoding"))
        ):
            return response
        response.content = inject(response.content, tag)
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response
