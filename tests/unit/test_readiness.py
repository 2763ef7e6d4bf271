"""The readiness probe on real sockets (loopback and a temp dir, no processes), and the
decisions of :class:`Readiness` with a fake clock."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reloadkit.net.binding import Listener, open_listeners, parse_binds
from reloadkit.net.handover import Succession
from reloadkit.net.readiness import ACCEPTING, NOTIFIED, TIMER, Probe, Readiness, diag_available, open_probe

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(not sys.platform.startswith("linux") or not diag_available(), reason="sock_diag is Linux's"),
]


@pytest.fixture(params=["127.0.0.1:0", "[::1]:0", "unix"])
def listener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Listener]:
    spec = f"unix:{tmp_path / 'app.sock'}" if request.param == "unix" else request.param
    try:
        with open_listeners(parse_binds([spec]), 64) as listeners:
            yield listeners[0]
    except OSError as exc:  # no IPv6 on this host
        pytest.skip(str(exc))


def _client(listener: Listener) -> socket.socket:
    if listener.unix_path is not None:
        client = socket.socket(socket.AF_UNIX)
        client.connect(listener.unix_path)
        return client
    return socket.create_connection(listener.sock.getsockname()[:2], timeout=5)


def test_a_probe_counts_as_taken_only_once_the_server_accepts_it(listener: Listener) -> None:
    succession = Succession(listener)
    probe = open_probe(listener.sock, succession.connect)
    assert probe is not None
    try:
        assert probe.taken() is False
        conn, _ = listener.sock.accept()
        assert probe.taken() is True
        assert conn.recv(16) == b""  # half-closed at once: the server reads an end of file
        conn.close()
        assert probe.taken() is True  # accepted and closed
    finally:
        probe.close()


def test_on_a_shared_queue_the_probe_is_taken_after_what_queued_before_it(listener: Listener) -> None:
    first = _client(listener)
    probe = open_probe(listener.sock, Succession(listener).connect)
    assert probe is not None
    try:
        conn, _ = listener.sock.accept()  # the client that came first
        assert probe.taken() is False
        conn.close()
        listener.sock.accept()[0].close()
        assert probe.taken() is True
    finally:
        probe.close()
        first.close()


def test_a_probe_reaches_a_prepared_socket_that_clients_never_reach(listener: Listener) -> None:
    succession = Succession(listener)
    new = succession.prepare()
    if new is None:
        pytest.skip("no successor socket here")
    try:
        probe = open_probe(new, lambda: succession.connect_to(new))
        assert probe is not None
        client = _client(listener)  # a client still goes to the current socket
        new.settimeout(5)
        conn, _ = new.accept()
        assert probe.taken() is True
        listener.sock.settimeout(5)
        listener.sock.accept()[0].close()
        new.setblocking(False)
        with pytest.raises(BlockingIOError):
            new.accept()  # nothing but the probe went there
        conn.close()
        client.close()
        probe.close()
    finally:
        succession.close()


class _FakeProbe(Probe):
    def __init__(self, answers: list[bool | None]) -> None:  # no socket
        self.answers = answers
        self.closed = False
        self.server_closed = False

    def taken(self) -> bool | None:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def finished(self) -> bool:
        return self.server_closed

    def close(self) -> None:
        self.closed = True


def test_accepting_makes_a_child_ready_without_the_timer() -> None:
    readiness = Readiness(ready_after=30.0)
    probe = _FakeProbe([False, False, False, True])
    readiness.watch(1, 100.0, [probe])
    assert readiness.check(100.0005) == []  # not checked before its first deadline
    found = []
    now = 100.0
    while not found:
        deadline = readiness.deadline()
        assert deadline is not None and deadline - now <= 0.005  # checked often enough
        now = deadline
        found = readiness.check(now)
    assert found == [(1, ACCEPTING)]
    assert now < 100.1 and not probe.closed  # open until the server closes its end: it may answer
    readiness.check(now + 5.0)
    assert not probe.closed  # a slow server (a loaded machine) still has a reader
    probe.server_closed = True
    deadline = readiness.deadline()
    assert deadline is not None and deadline <= now + 6.0
    readiness.check(deadline)
    assert probe.closed and readiness.deadline() is None


def test_a_probe_whose_server_end_never_closes_is_closed_after_a_while() -> None:
    readiness = Readiness(ready_after=30.0)
    probe = _FakeProbe([True])
    readiness.watch(1, 0.0, [probe])
    readiness.check(0.001)
    while (deadline := readiness.deadline()) is not None and deadline < 30.0:
        readiness.check(deadline)
    assert not probe.closed
    readiness.check(31.0)
    assert probe.closed and readiness.deadline() is None


def test_ready_1_waits_for_accepting_when_a_probe_works() -> None:
    """gunicorn's arbiter notifies before any worker has imported the app."""
    readiness = Readiness(ready_after=1.0)
    readiness.watch(1, 0.0, [_FakeProbe([False, False, True])])
    assert readiness.notified(1, 0.01) is None
    assert readiness.check(5.0) == []  # neither READY=1 nor the timer
    assert readiness.check(6.0) == [(1, ACCEPTING)]


def test_without_a_probe_ready_1_wins_and_the_timer_is_the_last_resort() -> None:
    readiness = Readiness(ready_after=1.0)
    readiness.watch(1, 0.0, [])
    unusable = _FakeProbe([None])  # the kernel cannot tell: no probe
    unusable.server_closed = True
    readiness.watch(2, 0.0, [unusable])
    assert readiness.check(0.1) == [] and unusable.closed  # left until its server end closed
    assert readiness.notified(1, 0.2) == NOTIFIED
    assert readiness.deadline() == 1.0
    assert readiness.check(0.99) == []
    assert readiness.check(1.0) == [(2, TIMER)]
    readiness.watch(3, 2.0, [])
    readiness.extend(3, 5.0)  # EXTEND_TIMEOUT_USEC
    assert readiness.check(4.0) == []
    assert readiness.check(7.0) == [(3, TIMER)]


def test_a_forgotten_child_is_never_reported() -> None:
    readiness = Readiness(ready_after=1.0)
    probe = _FakeProbe([True])
    readiness.watch(1, 0.0, [probe])
    readiness.forget(1, 0.5)
    assert readiness.check(10.0) == [] and not probe.closed  # still queued: it may yet be accepted
    probe.server_closed = True
    readiness.check(11.0)
    assert probe.closed and readiness.deadline() is None


def test_a_naive_server_that_answers_a_forgotten_probe_meets_no_broken_pipe(tmp_path: Path) -> None:
    """The child is told to stop before it accepted its probe; it accepts it all the same
    and, as a naive server does, writes an answer to the end of file: the probe must still
    be there to read it (on a Unix socket a closed peer is EPIPE at once: a traceback)."""
    if not diag_available():
        pytest.skip("no sock_diag")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "s.sock"))
    server.listen(8)

    def connect() -> socket.socket:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(tmp_path / "s.sock"))
        return client

    readiness = Readiness(ready_after=1.0)
    try:
        probe = open_probe(server, connect)
        assert probe is not None
        readiness.watch(1, time.monotonic(), [probe])
        readiness.forget(1)
        readiness.check(time.monotonic())
        conn, _ = server.accept()
        with conn:
            assert conn.recv(100) == b""
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")  # BrokenPipeError when closed
        readiness.check(time.monotonic() + 1.0)
        assert readiness.deadline() is None  # read what it answered, saw its close, closed
    finally:
        readiness.close()
        server.close()


def test_an_explicit_ready_after_is_an_upper_bound_beside_a_probe() -> None:
    """A server that holds its sockets and never accepts on them is switched to when the
    user said so (--ready-after), not never."""
    readiness = Readiness(ready_after=0.5, timer_beside_probes=True)
    readiness.watch(1, 0.0, [_FakeProbe([False])])
    readiness.watch(2, 0.0, [_FakeProbe([False, True])])
    found = readiness.check(0.1)
    assert found == [(2, ACCEPTING)]
    assert readiness.check(0.49) == []
    assert readiness.check(0.5) == [(1, TIMER)]
