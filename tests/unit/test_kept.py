"""A kept connection (net/kept.py) on real sockets: its upstream is made when the client
sends, dropped when the stopping generation lets go of it (a request it left unanswered is
sent again on the next one), ended as before when that generation was killed, and closed
after its idle timeout."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from reloadkit.net.kept import Kept
from reloadkit.net.takeover import CLOSE, CUT, RELEASE

pytestmark = pytest.mark.timeout(30)


class Upstreams:
    """A listening socket standing for the held address; each accepted end is a 'generation'."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.made = 0

    def connect(self) -> socket.socket:
        self.made += 1
        return socket.create_connection(self.listener.getsockname(), timeout=5)

    def accept(self) -> socket.socket:
        self.listener.settimeout(5)
        conn, _ = self.listener.accept()
        conn.settimeout(5)
        return conn


def run_until(selector: selectors.BaseSelector, done: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        for key, _events in selector.select(0.01):
            key.data()


Parts = tuple[selectors.BaseSelector, Upstreams, socket.socket, Kept, list[Kept]]


@pytest.fixture
def parts() -> Iterator[Parts]:
    selector = selectors.DefaultSelector()
    upstreams = Upstreams()
    client, served = socket.socketpair()
    client.settimeout(5)
    closed: list[Kept] = []
    client.sendall(b"GET /1 HTTP/1.1\r\n\r\n")  # queued before the takeover
    kept = Kept(served, upstreams.connect, selector, closed.append, idle_timeout=0.2)
    yield selector, upstreams, client, kept, closed
    kept.close()
    client.close()
    upstreams.listener.close()
    selector.close()


def answered_once(parts: Parts) -> socket.socket:
    """The first generation's end, once it has read GET /1 and its answer reached the client."""
    selector, upstreams, client, kept, _closed = parts
    first = upstreams.accept()
    run_until(selector, lambda: kept.to_upstream == b"")
    assert first.recv(100) == b"GET /1 HTTP/1.1\r\n\r\n"
    first.sendall(b"one")
    run_until(selector, lambda: kept.to_client == b"" and kept.unanswered == b"")
    assert client.recv(100) == b"one"
    return first


def test_queued_bytes_go_first_and_a_let_go_upstream_is_replaced(parts: Parts) -> None:
    selector, upstreams, client, kept, _closed = parts
    first = answered_once(parts)
    kept.park()  # the generation behind `first` is told to stop
    client.sendall(b"GET /2 HTTP/1.1\r\n\r\n")  # races with its close: it never reads it
    run_until(selector, lambda: kept.unanswered == b"GET /2 HTTP/1.1\r\n\r\n")
    first.close()
    run_until(selector, lambda: kept.upstream_ended)
    kept.decided(RELEASE)  # it let go of the connection while it ran
    second = upstreams.accept()
    assert second.recv(100) == b"GET /2 HTTP/1.1\r\n\r\n"  # sent again, to the next one
    second.sendall(b"two")
    run_until(selector, lambda: kept.unanswered == b"" and kept.to_client == b"")
    assert client.recv(100) == b"two"
    assert upstreams.made == 2
    second.close()


def test_a_killed_generations_end_reaches_the_client(parts: Parts) -> None:
    selector, upstreams, client, kept, closed = parts
    first = upstreams.accept()
    run_until(selector, lambda: kept.to_upstream == b"")
    first.sendall(b"partial")
    run_until(selector, lambda: kept.to_client == b"" and kept.unanswered == b"")
    kept.park()
    first.close()
    run_until(selector, lambda: kept.upstream_ended)
    kept.decided(CLOSE)
    assert client.recv(100) == b"partial"
    assert client.recv(100) == b""  # the end of file, as without a takeover
    assert closed == [kept]


def test_a_cut_upstream_with_its_answer_begun_is_not_served_on(parts: Parts) -> None:
    selector, upstreams, client, kept, closed = parts
    first = upstreams.accept()
    run_until(selector, lambda: kept.to_upstream == b"")
    first.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\npart")
    run_until(selector, lambda: kept.to_client == b"" and kept.unanswered == b"")
    kept.park()
    first.close()
    run_until(selector, lambda: kept.upstream_ended)
    kept.decided(CUT)
    assert client.recv(100).endswith(b"part") and client.recv(100) == b""
    assert closed == [kept] and upstreams.made == 1


def test_an_idle_kept_connection_closes_after_its_timeout(parts: Parts) -> None:
    selector, upstreams, client, kept, closed = parts
    first = upstreams.accept()
    run_until(selector, lambda: kept.to_upstream == b"")
    first.sendall(b"one")
    run_until(selector, lambda: kept.unanswered == b"")
    assert kept.deadline() is None  # a request is carried: no idle timeout
    kept.park()
    first.close()
    run_until(selector, lambda: kept.upstream_ended)
    kept.decided(RELEASE)
    deadline = kept.deadline()
    assert deadline is not None
    kept.expire(deadline - 0.1)
    assert not closed
    kept.expire(deadline)
    assert closed == [kept]
    assert client.recv(100) == b"one" and client.recv(100) == b""


def test_the_idle_timeout_is_due_at_its_deadline_whatever_the_rounding(parts: Parts) -> None:
    _selector, _upstreams, _client, kept, closed = parts
    kept.idle_since, kept.idle_timeout = 40000.1, 0.2  # (since + 0.2) - since < 0.2 in floating point
    deadline = kept.deadline()
    assert deadline is not None and deadline - kept.idle_since < kept.idle_timeout
    kept.expire(deadline)
    assert closed == [kept]


def test_a_request_sent_while_its_upstream_is_parked_at_a_boundary_waits_for_the_decision(parts: Parts) -> None:
    """The stopping generation never sees it (aiohttp would read it and close unanswered):
    it goes to the next generation once the first lets go of the upstream."""
    selector, upstreams, client, kept, _closed = parts
    first = answered_once(parts)
    kept.park(hold_until=time.monotonic() + 30)
    client.sendall(b"GET /2 HTTP/1.1\r\n\r\n")
    run_until(selector, lambda: kept.to_upstream == b"GET /2 HTTP/1.1\r\n\r\n")
    first.setblocking(False)
    with pytest.raises(BlockingIOError):
        first.recv(100)  # held back from the stopping generation
    assert kept.unanswered == b""
    first.close()
    run_until(selector, lambda: kept.upstream_ended)
    kept.decided(RELEASE)
    second = upstreams.accept()
    assert second.recv(100) == b"GET /2 HTTP/1.1\r\n\r\n"
    second.close()


def test_a_held_request_reaches_a_generation_that_keeps_its_upstream_past_the_hold(parts: Parts) -> None:
    selector, _upstreams, client, kept, _closed = parts
    first = answered_once(parts)
    until = time.monotonic() + 30
    kept.park(hold_until=until)
    client.sendall(b"GET /2 HTTP/1.1\r\n\r\n")
    run_until(selector, lambda: kept.to_upstream != b"")
    kept.unhold(until - 1)
    assert kept.to_upstream != b""  # not yet
    kept.unhold(until)
    assert first.recv(100) == b"GET /2 HTTP/1.1\r\n\r\n"
    first.close()


def test_the_rest_of_a_request_under_way_is_not_held(parts: Parts) -> None:
    selector, upstreams, client, kept, _closed = parts
    first = upstreams.accept()
    run_until(selector, lambda: kept.to_upstream == b"")
    assert first.recv(100) == b"GET /1 HTTP/1.1\r\n\r\n"
    kept.park(hold_until=time.monotonic() + 30)  # GET /1 is unanswered: a request under way
    client.sendall(b"its body")
    run_until(selector, lambda: kept.unanswered.endswith(b"its body"))
    assert first.recv(100) == b"its body"
    first.close()


def test_a_request_its_server_read_and_never_answered_goes_first_to_the_next_generation() -> None:
    """A connection taken directly whose stopping server read the next request and dropped
    it: the copy made at the take is sent up before anything the client sends after."""
    selector = selectors.DefaultSelector()
    upstreams = Upstreams()
    client, served = socket.socketpair()
    client.settimeout(5)
    closed: list[Kept] = []
    client.sendall(b"ER HTTP/1.1\r\n\r\n")  # the rest of it, never read by the old server
    kept = Kept(served, upstreams.connect, selector, closed.append, idle_timeout=5, resend=b"GET /2 HTTP/1.1\r\nX-Head")
    try:
        upstream = upstreams.accept()
        run_until(selector, lambda: kept.to_upstream == b"")
        expected = b"GET /2 HTTP/1.1\r\nX-HeadER HTTP/1.1\r\n\r\n"
        got = b""
        while len(got) < len(expected):
            got += upstream.recv(100)
        assert got == expected
        upstream.sendall(b"two")
        run_until(selector, lambda: kept.unanswered == b"" and kept.to_client == b"")
        assert client.recv(100) == b"two"
        assert upstreams.made == 1
        upstream.close()
    finally:
        kept.close()
        client.close()
        upstreams.listener.close()
        selector.close()
