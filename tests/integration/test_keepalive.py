"""Keep-alive clients across reloads: one kept-alive connection, many reloads, no exception.

An asyncio server told to stop closes its idle keep-alive connections; a request sent on one
meanwhile was lost (``ConnectionResetError``, ``RemoteDisconnected``: Python clients do not
retry). Now every connection of the stopping generation is taken over just before it is told
to stop, and served by the next one once the stopping one lets go of it (net/takeover.py,
net/kept.py)."""

from __future__ import annotations

import http.client
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support import BIN, start_server, wait_for, write_file

pytestmark = pytest.mark.timeout(180)


class KeepAliveClient:
    """One ``http.client.HTTPConnection`` reused for every request, in a thread; an
    exception is counted and the next request opens a new connection."""

    def __init__(self, url: str, path: str = "/") -> None:
        self.path = path
        host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.errors: list[str] = []
        self.bodies: list[str] = []
        self.last_body: str | None = None
        self.requests = 0
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> KeepAliveClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                self.connections += 1
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                body = response.read().decode()
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = None
                continue
            self.requests += 1
            if response.status != 200:
                self.errors.append(f"HTTP {response.status}")
                continue
            self.last_body = body
            if not self.bodies or self.bodies[-1] != body:
                self.bodies.append(body)
        if conn is not None:
            conn.close()

    def wait_requests(self, count: int, timeout: float = 20) -> None:
        target = self.requests + count
        wait_for(lambda: self.requests >= target, timeout, f"{count} more requests")


def _script(name: str) -> str:
    return str(BIN / name)


SERVERS: dict[str, list[str]] = {
    "uvicorn": [_script("uvicorn"), "--fd", "3", "asgi_app:app"],
    "hypercorn": [_script("hypercorn"), "--bind", "fd://3", "asgi_app:app"],
    "aiohttp": [sys.executable, "serve_aiohttp.py"],
    "gunicorn sync": [_script("gunicorn"), "wsgi_app:app"],
    "gunicorn gthread": [_script("gunicorn"), "-k", "gthread", "--threads", "4", "wsgi_app:app"],
    "waitress": [sys.executable, "serve_waitress.py"],
    "daphne": [_script("daphne"), "--fd", "3", "asgi_app:application"],
}
RELOADS = 12
# hypercorn shuts its idle connections down when told to stop (``write_eof()``): reloadkit's
# hook skips that on a connection it holds (child/adopt.py). waitress dies of SIGTERM: the
# drain waits (within 1 s) for a look with no response under way, and the requests waiting
# then are served on.
# daphne drops the requests it has read and not answered when its reactor stops: the drain
# holds the reads of the connections while it waits for a moment with none under way
# (test_requests_under_way_on_every_connection_end_before_the_stop), and a request it read
# from the bytes copied at the takeover is sent on (takeover.replay).
DEFAULT = {("uvicorn", ()), ("aiohttp", ()), ("aiohttp", ("--overlap",))}
# They answer a request read before the signal, and say "Connection: close" (RFC 9112 9.6).
CLOSE_WHEN_STOPPING = ("gunicorn", "hypercorn")
CASES = [
    pytest.param(server, mode, id=f"{server}-{mode[0][2:] if mode else 'default'}",
                 marks=() if (server, mode) in DEFAULT else pytest.mark.matrix)
    for server in SERVERS for mode in [(), ("--overlap",)]
]


@pytest.mark.parametrize(("server", "mode"), CASES)
def test_a_kept_alive_connection_sees_no_error_across_reloads(server_project: Path, server: str,
                                                               mode: tuple[str, ...]) -> None:
    pytest.importorskip(server.split()[0])
    with start_server(server_project, ["127.0.0.1:0"], SERVERS[server], "-v", *mode) as rk:
        url = rk.wait_listening()[0]
        rk.wait_for_output(r"ready in \d+ ms")
        with KeepAliveClient(url) as client:
            wait_for(lambda: client.last_body == "v0", 30, "v0")
            for number in range(1, RELOADS + 1):
                client.wait_requests(5)
                write_file(server_project / "version.py", f"VERSION = 'v{number}'\n")
                wait_for(lambda n=number: client.last_body == f"v{n}", 30, f"the client to see v{number}")
                rk.wait_for_output(r"ready in \d+ ms", count=number + 1)
            client.wait_requests(5)
        report: dict[str, Any] = {"errors": client.errors[:5], "connections": client.connections}
        assert client.errors == [], (report, rk.output[-3000:])
        assert client.bodies == [f"v{n}" for n in range(RELOADS + 1)], client.bodies
        if not server.startswith(CLOSE_WHEN_STOPPING):  # gunicorn sync: Connection: close always
            assert client.connections == 1, report  # the same connection all along


def test_requests_under_way_on_every_connection_end_before_the_stop(server_project: Path) -> None:
    """daphne drops the requests it has read and not answered when its reactor stops. Two
    clients keep a 50 ms request under way nearly all the time, so the drain never sees a
    moment with no response under way by itself: it holds their reads, the requests under way
    end, and the next ones wait for the next generation (kept.py: ``hold_idle``)."""
    pytest.importorskip("daphne")
    reloads = 4
    with start_server(server_project, ["127.0.0.1:0"], [_script("daphne"), "--fd", "3", "asgi_app:application"],
                      "-v") as rk:
        url = rk.wait_listening()[0]
        rk.wait_for_output(r"ready in \d+ ms")
        with KeepAliveClient(url, "/slow") as first, KeepAliveClient(url, "/slow") as second:
            clients = (first, second)
            wait_for(lambda: all(client.last_body == "v0" for client in clients), 30, "v0")
            for number in range(1, reloads + 1):
                for client in clients:
                    client.wait_requests(5)
                write_file(server_project / "version.py", f"VERSION = 'v{number}'\n")
                wait_for(lambda n=number: all(client.last_body == f"v{n}" for client in clients), 30,
                         f"the clients to see v{number}")
            for client in clients:
                client.wait_requests(5)
        errors = [error for client in clients for error in client.errors]
        assert errors == [], (errors[:5], rk.output[-3000:])
        assert [client.connections for client in clients] == [1, 1]


def test_an_upload_under_way_across_a_reload_is_answered(server_project: Path) -> None:
    """While the drain waits (two clients keep requests under way) it holds the reads of the
    old generation's connections; an upload whose body is still arriving gets its reads back,
    and its server (uvicorn, which finishes what it has begun) reads the rest and answers.
    Held, it read the rest only once the takeover gave its reads back, 0.5 s later."""
    pytest.importorskip("uvicorn")
    with start_server(server_project, ["127.0.0.1:0"], SERVERS["uvicorn"], "-v") as rk:
        url = rk.wait_listening()[0]
        host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
        rk.wait_for_output(r"ready in \d+ ms")
        with KeepAliveClient(url, "/slow") as first, KeepAliveClient(url, "/slow") as second:
            answers = []
            for number in range(1, 4):
                for client in (first, second):
                    client.wait_requests(3)
                with socket.create_connection((host, int(port)), timeout=15) as upload:
                    upload.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 400000\r\n\r\n")
                    for part in range(20):  # a slow client: 20 KB every 50 ms, across the reload
                        upload.sendall(b"x" * 20_000)
                        if part == 5:
                            write_file(server_project / "version.py", f"VERSION = 'v{number}'\n")
                        time.sleep(0.05)  # the client's pace, not a wait for a condition
                    answer = b""
                    while not answer.endswith(b" 400000") and (chunk := upload.recv(65536)):
                        answer += chunk
                    answers.append(answer.split(b"\r\n\r\n")[-1].decode())
                wait_for(lambda n=number: first.last_body == f"v{n}", 30, f"the clients to see v{number}")
        assert answers == ["v0 400000", "v1 400000", "v2 400000"], (answers, rk.output[-3000:])
        assert "a request still arriving; its reads are not held" in rk.output, rk.output[-3000:]
        assert first.errors == second.errors == [], (first.errors[:3], second.errors[:3])


def test_a_requests_session_sees_no_exception_across_many_reloads(server_project: Path) -> None:
    """The issue's client: a ``requests.Session`` looping against uvicorn (it does not retry)."""
    requests = pytest.importorskip("requests")
    reloads = 50
    with start_server(server_project, ["127.0.0.1:0"], SERVERS["uvicorn"]) as rk:
        url = rk.wait_listening()[0]
        errors: list[str] = []
        seen: list[str] = []
        stop = threading.Event()

        def loop() -> None:
            with requests.Session() as session:
                while not stop.is_set():
                    try:
                        body = session.get(url, timeout=10).text
                    except requests.RequestException as exc:
                        errors.append(repr(exc))
                        continue
                    if not seen or seen[-1] != body:
                        seen.append(body)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            wait_for(lambda: seen[-1:] == ["v0"], 30, "v0")
            for number in range(1, reloads + 1):
                write_file(server_project / "version.py", f"VERSION = 'v{number}'\n")
                wait_for(lambda n=number: seen[-1:] == [f"v{n}"], 30, f"the client to see v{number}")
        finally:
            stop.set()
            thread.join(15)
        assert errors == [], (errors[:5], rk.output[-3000:])
        assert seen == [f"v{n}" for n in range(reloads + 1)]
