"""The live-reload middleware (WSGI, ASGI, Django): HTML only, Content-Length fixed, streams
and compressed bodies untouched, inert outside reloadkit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from reloadkit.middleware import (
    ASGILiveReloadMiddleware,
    DjangoLiveReloadMiddleware,
    LiveReloadMiddleware,
    inject,
    script_tag,
)

pytestmark = pytest.mark.timeout(30)
PAGE = b"<html><body><p>hi</p></body></html>"
TAG = b'<script src="http://127.0.0.1:4567/reloadkit/livereload.js" data-token="7" async></script>'


@pytest.fixture
def under_reloadkit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELOADKIT_LIVERELOAD_URL", "127.0.0.1:4567")
    monkeypatch.setenv("RELOADKIT_GENERATION", "7")


@pytest.fixture
def outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELOADKIT_LIVERELOAD_URL", raising=False)


def test_inject() -> None:
    assert inject(b"<body>a</body><!-- </body> -->x</BODY >", b"T") == b"<body>a</body><!-- </body> -->xT</BODY >"
    assert inject(b"<p>a</p></html>", b"T") == b"<p>a</p>T</html>"
    assert inject(b"<p>a</p>", b"T") == b"<p>a</p>T"


def test_script_tag(under_reloadkit: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert script_tag("example:8000") == TAG  # a specific address is used as it is
    monkeypatch.setenv("RELOADKIT_LIVERELOAD_URL", "0.0.0.0:4567")
    assert b"http://box.local:4567/" in (script_tag("box.local:8000") or b"")
    assert b"http://[::1]:4567/" in (script_tag("[::1]:8000") or b"")
    assert b"http://127.0.0.1:4567/" in (script_tag(None) or b"")


def test_script_tag_outside_reloadkit(outside: None) -> None:
    assert script_tag("example") is None


def _wsgi(app: Any, method: str = "GET") -> tuple[str, list[tuple[str, str]], bytes]:
    seen: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen[:] = [status, headers]
        return lambda data: None

    body = b"".join(LiveReloadMiddleware(app)({"REQUEST_METHOD": method, "HTTP_HOST": "h:1"}, start_response))
    return seen[0], seen[1], body


def _app(headers: list[tuple[str, str]], body: Any, status: str = "200 OK") -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response(status, headers)
        return body
    return app


def test_wsgi_html_gets_the_script_and_a_right_length(under_reloadkit: None) -> None:
    _status, headers, body = _wsgi(_app([("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE)))], [PAGE]))
    assert body == PAGE.replace(b"</body>", TAG + b"</body>")
    assert ("Content-Length", str(len(body))) in headers and sum(name == "Content-Length" for name, _ in headers) == 1
    # a generator with a Content-Length is complete too
    _status, headers, body = _wsgi(_app([("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))], iter([PAGE[:5], PAGE[5:]])))
    assert TAG in body and dict(headers)["Content-Length"] == str(len(body))


def _stream() -> Iterator[bytes]:
    yield b"<html><body>"
    yield b"</body></html>"


@pytest.mark.parametrize("case", ["json", "gzip", "stream", "head", "not-modified"])
def test_wsgi_leaves_other_responses_alone(under_reloadkit: None, case: str) -> None:
    headers = [("Content-Type", "text/html")]
    body: Any = [PAGE]
    status, method = "200 OK", "GET"
    if case == "json":
        headers = [("Content-Type", "application/json")]
    elif case == "gzip":
        headers.append(("Content-Encoding", "gzip"))
    elif case == "stream":
        body = _stream()
    elif case == "head":
        method = "HEAD"
    else:
        status, body = "304 Not Modified", []
    _status, _headers, out = _wsgi(_app(headers, body, status), method)
    assert TAG not in out and _headers == headers


def test_wsgi_is_inert_outside_reloadkit(outside: None) -> None:
    _status, headers, body = _wsgi(_app([("Content-Type", "text/html")], [PAGE]))
    assert body == PAGE and headers == [("Content-Type", "text/html")]


def _asgi(messages: list[dict[str, Any]], method: str = "GET") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "headers": [(b"host", b"h:1")]}
    asyncio.run(ASGILiveReloadMiddleware(app)(scope, receive, send))
    return sent


def _start(*headers: tuple[bytes, bytes], status: int = 200) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


def test_asgi_html_in_one_message(under_reloadkit: None) -> None:
    sent = _asgi([_start((b"content-type", b"text/html"), (b"content-length", str(len(PAGE)).encode())),
                  {"type": "http.response.body", "body": PAGE}])
    body = sent[1]["body"]
    assert body == PAGE.replace(b"</body>", TAG + b"</body>")
    assert sent[0]["headers"] == [(b"content-type", b"text/html"), (b"content-length", str(len(body)).encode())]


def test_asgi_leaves_streams_compressed_and_other_types_alone(under_reloadkit: None) -> None:
    stream = [_start((b"content-type", b"text/html")), {"type": "http.response.body", "body": b"<body>", "more_body": True},
              {"type": "http.response.body", "body": b"</body>"}]
    assert _asgi(stream) == stream
    gzip = [_start((b"content-type", b"text/html"), (b"content-encoding", b"gzip")), {"type": "http.response.body", "body": b"x"}]
    assert _asgi(gzip) == gzip
    plain = [_start((b"content-type", b"text/plain")), {"type": "http.response.body", "body": PAGE}]
    assert _asgi(plain) == plain
    html = [_start((b"content-type", b"text/html")), {"type": "http.response.body", "body": PAGE}]
    assert _asgi(html, method="HEAD") == html


def test_asgi_is_inert_outside_reloadkit(outside: None) -> None:
    html = [_start((b"content-type", b"text/html")), {"type": "http.response.body", "body": PAGE}]
    assert _asgi(html) == html


@pytest.fixture(scope="module")
def django_settings() -> None:
    django = pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(DEFAULT_CHARSET="utf-8")
    django.setup()


class _Request:
    def __init__(self, method: str = "GET") -> None:
        self.method = method
        self.META = {"HTTP_HOST": "h:1"}


def test_django(django_settings: None, under_reloadkit: None) -> None:
    from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

    def view(_request: Any) -> Any:
        response = HttpResponse(PAGE)
        response["Content-Length"] = str(len(PAGE))
        return response

    response = DjangoLiveReloadMiddleware(view)(_Request())
    assert response.content == PAGE.replace(b"</body>", TAG + b"</body>")
    assert response["Content-Length"] == str(len(response.content))
    streaming = DjangoLiveReloadMiddleware(lambda r: StreamingHttpResponse(iter([PAGE])))(_Request())
    assert b"".join(streaming.streaming_content) == PAGE
    assert DjangoLiveReloadMiddleware(lambda r: JsonResponse({"a": 1}))(_Request()).content == b'{"a": 1}'
    gzip = HttpResponse(PAGE)
    gzip["Content-Encoding"] = "gzip"
    assert DjangoLiveReloadMiddleware(lambda r: gzip)(_Request()).content == PAGE


def test_django_outside_reloadkit(django_settings: None, outside: None) -> None:
    from django.http import HttpResponse

    assert DjangoLiveReloadMiddleware(lambda r: HttpResponse(PAGE))(_Request()).content == PAGE


def test_the_middleware_imports_cheaply() -> None:
    """No supervisor, no selectors loop, no web framework on the child's path."""
    code = ("import sys, reloadkit.middleware; "
            "print(','.join(m for m in ('reloadkit.supervisor.loop', 'reloadkit.browser.livereload', 'reloadkit.browser.errorpage', 'asyncio', 'django') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=20)
    assert out.stdout.strip() == ""
