"""--ready-path's probe on real sockets: a GET that must answer below 500, asked again after
a 5xx answer or a connection closed without one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from reloadkit.net.readiness import ANSWERING, Readiness, open_http_probe

pytestmark = pytest.mark.timeout(30)


class _Server:
    """Answers each connection with the next of ``answers`` (a status, or None: close
    without answering) and records the requests."""

    def __init__(self, answers: list[int | None], family: int = socket.AF_INET) -> None:
        self.answers = answers
        self.requests: list[bytes] = []
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for answer in self.answers:
            while True:
                if self.stop.is_set():
                    return
                try:
                    conn, _ = self.sock.accept()
                    break
                except TimeoutError:
                    continue
            conn.settimeout(5)
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                self.requests.append(request)
                if answer is not None:
                    conn.sendall(f"HTTP/1.1 {answer} X\r\nContent-Length: 2\r\n\r\nok".encode())

    def connect(self) -> socket.socket:
        return socket.create_connection(self.sock.getsockname()[:2], timeout=5)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[_Server]:
    server = _Server(request.param)
    yield server
    server.stop.set()
    server.thread.join(5)
    server.sock.close()


def _until_answered(readiness: Readiness, deadline: float = 10.0) -> list[tuple[int, str]]:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        found = readiness.check(time.monotonic())
        if found:
            return found
        time.sleep(0.005)
    return []


@pytest.mark.parametrize("server", [[500, None, 503, 404]], indirect=True)
def test_ready_only_once_it_answers_below_500(server: _Server) -> None:
    probe = open_http_probe(server.connect, "/healthz")
    assert probe is not None
    readiness = Readiness(1.0)
    readiness.watch(1, time.monotonic(), [probe])
    assert _until_answered(readiness) == [(1, ANSWERING)]
    assert len(server.requests) == 4  # 500, a closed connection and 503 were asked again
    host, port = server.sock.getsockname()[:2]
    assert server.requests[0].startswith(b"GET /healthz HTTP/1.1\r\n")
    assert f"\r\nHost: {host}:{port}\r\n".encode() in server.requests[0]
    readiness.close()


@pytest.mark.parametrize("server", [[500] * 20], indirect=True)
def test_never_ready_while_it_answers_500_and_not_by_the_timer(server: _Server) -> None:
    probe = open_http_probe(server.connect, "/")
    assert probe is not None
    readiness = Readiness(0.05)  # the default timer is not used beside a probe
    started = time.monotonic()
    readiness.watch(1, started, [probe])
    end = started + 0.5
    while time.monotonic() < end:
        assert readiness.check(time.monotonic()) == []
        time.sleep(0.01)
    assert 2 <= len(server.requests) <= 5  # 0.1 s, then 0.2 s, 0.4 s: backing off
    readiness.close()


def test_an_unreachable_socket_gives_no_probe() -> None:
    def refuse() -> socket.socket:
        raise OSError("no way to reach this socket alone")

    assert open_http_probe(refuse, "/") is None
