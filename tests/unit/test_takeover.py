"""Keep-alive takeover: the pure decisions (takeover.py), the request-boundary rule of the
kernel's queues, and a descriptor taken from a real process with pidfd_getfd."""

from __future__ import annotations

import fcntl
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import termios
import time

import pytest

from reloadkit.child.adopt import TAKEN_USER_TIMEOUT
from reloadkit.net.sockdiag import TcpQueues
from reloadkit.net.takeover import (
    CLOSE,
    CUT,
    GRACEFUL,
    KILLED,
    RELEASE,
    SIGNALLED,
    TCP_CLOSE_WAIT,
    TCP_ESTABLISHED,
    Parking,
    connections_on,
    exit_kind,
    guard_shutdown,
    hold_reads,
    mark,
    read_unanswered,
    replay,
    resume_reads,
    socket_fds,
    still_receiving,
    take_fd,
    takeover_unavailable,
    tcp_state,
    unguard_shutdown,
    unread,
    usable,
)

pytestmark = pytest.mark.timeout(30)


def test_a_connection_let_go_of_while_the_generation_runs_is_released() -> None:
    parking = Parking()
    parking.park(10, [1, 2, 3])
    assert parking and parking.pids() == [10]
    assert parking.look(10, {1, 2, 3}) == []
    assert parking.look(10, {1, 3, 99}) == [(2, RELEASE)]
    assert parking.held_by(10) == {1, 3}
    assert parking.exited(10, GRACEFUL) == [(1, RELEASE), (3, RELEASE)]
    assert not parking and parking.exited(10, GRACEFUL) == []


def test_what_a_killed_generation_held_is_closed() -> None:
    parking = Parking()
    parking.park(10, [1, 2])
    assert parking.look(10, {2}) == [(1, RELEASE)]  # let go of before the kill: served on
    assert parking.exited(10, KILLED) == [(2, CLOSE)]


def test_death_of_the_stop_signal_serves_on_only_what_sat_at_a_request_boundary() -> None:
    parking = Parking()
    parking.park(10, [1, 2], boundary=[2])
    assert parking.exited(10, SIGNALLED) == [(1, CUT), (2, RELEASE)]


def test_how_a_generation_ended() -> None:
    assert exit_kind(0, killed_by_us=False) == GRACEFUL
    assert exit_kind(1, killed_by_us=False) == GRACEFUL  # aiohttp's GracefulExit
    assert exit_kind(128 + signal.SIGTERM, killed_by_us=False) == SIGNALLED
    assert exit_kind(128 + signal.SIGKILL, killed_by_us=False) == KILLED
    assert exit_kind(128 + signal.SIGSEGV, killed_by_us=False) == KILLED
    assert exit_kind(0, killed_by_us=True) == KILLED


def test_a_released_connection_is_served_only_while_it_can_be() -> None:
    assert usable(TCP_ESTABLISHED, False)
    assert not usable(4, False)  # FIN_WAIT1: the server called shutdown()
    assert usable(TCP_CLOSE_WAIT, True) and not usable(TCP_CLOSE_WAIT, None)
    assert usable(None, False) and not usable(None, None)  # Unix: unless its client is gone
    assert usable(TCP_ESTABLISHED, True, CUT) and not usable(TCP_ESTABLISHED, False, CUT)


@pytest.mark.parametrize(("queues", "boundary"), [
    (TcpQueues(0, 0, 100, sent_ago=3, received_ago=5), True),  # answered
    (TcpQueues(40, 0, 140, sent_ago=3, received_ago=0), True),  # the next request waits unread
    (TcpQueues(0, 0, 100, sent_ago=5, received_ago=3), False),  # read, not answered yet
    (TcpQueues(0, 0, 100, sent_ago=2, received_ago=2), False),  # the same millisecond, just now
    (TcpQueues(0, 0, 100, sent_ago=40, received_ago=40), True),  # a quick answer, long ago
    (TcpQueues(0, 12, 100, sent_ago=0, received_ago=5), False),  # its answer is still on the way
    # Nothing sent yet: the kernel's "last send" is the handshake, as old as the request.
    (TcpQueues(0, 0, 100, sent_ago=40, received_ago=40, sent=0), False),  # its first request, read
    (TcpQueues(60, 0, 100, sent_ago=40, received_ago=40, sent=0), False),  # part of it read
    (TcpQueues(100, 0, 100, sent_ago=40, received_ago=40, sent=0), True),  # none of it read
    (TcpQueues(0, 0, 100, sent_ago=40, received_ago=40, sent=82), True),  # answered long ago
])
def test_the_request_boundary_of_the_kernels_queues(queues: TcpQueues, boundary: bool) -> None:
    assert queues.at_request_boundary() is boundary


def test_a_connection_held_mid_request_is_still_receiving_while_bytes_come_and_none_go() -> None:
    held_at, body, request = (500, 300), b"xxxxxxxx", b"GET / HTTP/1.1\r\n"
    assert still_receiving(held_at, (540, 300), body)  # the body's rest: no answer
    assert not still_receiving(held_at, (500, 300), b"")  # nothing new: served
    assert not still_receiving(held_at, (540, 382), body)  # answered since
    assert not still_receiving(held_at, (540, 300), request)  # answered before: the next request
    assert not still_receiving(None, (540, 300), body)  # held at a boundary
    assert not still_receiving(held_at, None, body)  # counters unknown


_HOLDER = """
import socket, sys
listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen()
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
conn.recv(100)
conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
print(conn.fileno(), flush=True)
sys.stdin.read()  # until told to go: then its close() would be the FIN, but for our duplicate
"""


@pytest.mark.skipif(takeover_unavailable() is not None, reason="Linux's pidfd_getfd")
def test_a_connection_taken_from_another_process_outlives_its_close() -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        port = int(holder.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert client.recv(100).endswith(b"ok")
            fd = int(holder.stdout.readline())
            inodes = [inode for inode, (pid, number) in socket_fds([holder.pid]).items() if number == fd]
            assert inodes and inodes[0] in connections_on({port}, set())
            family, local, remote = connections_on({port}, set())[inodes[0]] or (0, ("", 0), ("", 0))
            assert (family, local[1], remote) == (socket.AF_INET, port, client.getsockname())
            pidfd = os.pidfd_open(holder.pid)
            try:
                kept = take_fd(pidfd, fd)
            finally:
                os.close(pidfd)
            with kept:
                client.sendall(b"GET /next HTTP/1.1\r\n\r\n")  # the holder does not read it
                holder.stdin.close()
                holder.wait(10)  # its descriptor closed: no FIN for the client, the duplicate holds it
                assert tcp_state(kept) == TCP_ESTABLISHED
                assert kept.recv(100) == b"GET /next HTTP/1.1\r\n\r\n"
                kept.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkept")
                assert client.recv(100).endswith(b"kept")
    finally:
        holder.kill()
        holder.wait()


def test_a_request_read_and_never_answered_is_seen() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname(), timeout=5) as client:
        server, _ = listener.accept()
        with server:  # blocking, no timeout: a socket with one polls before a MSG_DONTWAIT peek
            client.sendall(b"GET /1 HTTP/1.1\r\n\r\n")
            server.recv(100)
            server.sendall(b"answer")
            client.recv(100)
            assert not read_unanswered(server)  # answered
            deadline = time.monotonic() + 5
            while struct.unpack_from("=I", server.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 48), 44)[0] < 2:
                assert time.monotonic() < deadline
                time.sleep(0.001)  # the next request must arrive in a later millisecond
            client.sendall(b"GET /2 HTTP/1.1\r\n\r\n")
            deadline = time.monotonic() + 5
            while not unread(server):
                assert time.monotonic() < deadline
            assert not read_unanswered(server)  # waiting unread: not read yet
            server.recv(100)
            assert read_unanswered(server)  # read, and no answer since


def test_a_request_read_right_after_its_answer_is_seen_against_a_mark() -> None:
    """The jiffy-granular times cannot tell a request that followed its answer within 4 ms
    (a looping client) from none: the counters marked at the takeover can."""
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname(), timeout=5) as client:
        server, _ = listener.accept()
        with server:
            client.sendall(b"GET /1 HTTP/1.1\r\n\r\n")
            server.recv(100)
            server.sendall(b"answer")
            client.recv(100)
            since = mark(server)
            assert since is not None
            assert not read_unanswered(server, since)
            client.sendall(b"GET /2 HTTP/1.1\r\n\r\n")  # at once, as a looping client does
            deadline = time.monotonic() + 5
            while not unread(server):
                assert time.monotonic() < deadline
            assert not read_unanswered(server, since)  # waiting unread: not read yet
            server.recv(100)
            assert read_unanswered(server, since)  # read, and no answer since
            server.sendall(b"answer")
            assert not read_unanswered(server, since)


def _waiting(sock: socket.socket, count: int) -> None:
    deadline = time.monotonic() + 5
    while struct.unpack("=i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0] < count:
        assert time.monotonic() < deadline, "the bytes to arrive"
        time.sleep(0.001)


def test_a_request_waiting_at_the_mark_and_read_unanswered_after_it_can_be_replayed() -> None:
    """What the server read of the bytes copied at the mark is given back, and nothing when
    it answered, read beyond the copy, or the copy does not begin a request."""
    request = b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname(), timeout=5) as client:
        server, _ = listener.accept()
        with server:
            client.sendall(request)
            _waiting(server, len(request))
            since = mark(server)
            assert since is not None and since.waiting == request
            assert replay(server, since) == b""  # nothing read yet
            assert server.recv(10) == request[:10]
            assert replay(server, since) == request[:10]  # the rest still waits in the kernel
            assert server.recv(100) == request[10:]
            assert replay(server, since) == request
            client.sendall(b"GET /3 HTTP/1.1\r\n\r\n")
            _waiting(server, 1)
            server.recv(100)
            assert replay(server, since) == b""  # read what came after the copy: not all there
            server.sendall(b"answer")
            assert replay(server, since) == b""  # answered
            client.sendall(b"body bytes")
            _waiting(server, 10)
            body = mark(server)
            server.recv(100)
            assert body is not None and replay(server, body) == b""  # not a request's beginning


def test_held_reads_keep_a_poller_from_seeing_the_next_request_but_not_the_end() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname(), timeout=5) as client:
        server, _ = listener.accept()
        with server, selectors.DefaultSelector() as poller:
            server.setblocking(False)
            poller.register(server, selectors.EVENT_READ)
            assert hold_reads(server)
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            deadline = time.monotonic() + 5
            while not unread(server):  # arrived, and waits in the kernel
                assert time.monotonic() < deadline
            assert poller.select(0.05) == []
            resume_reads(server)
            assert poller.select(5) != []  # level-triggered: it is seen at once
            assert server.recv(100) == b"GET / HTTP/1.1\r\n\r\n"
            assert hold_reads(server)
            client.shutdown(socket.SHUT_WR)
            assert poller.select(5) != []  # an end of file still wakes the server
            assert server.recv(100) == b""


def test_reads_are_held_only_where_no_blocking_read_or_waiting_request_could_be_caught() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname(), timeout=5) as client:
        server, _ = listener.accept()
        with server:
            server.setblocking(True)
            assert not hold_reads(server)  # a blocking recv() would wait for a full buffer
            server.setblocking(False)
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            deadline = time.monotonic() + 5
            while not unread(server):
                assert time.monotonic() < deadline
            assert not hold_reads(server)  # a thread of its server may be about to read it
            assert server.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1
            assert hold_reads(server, one_thread=True)  # an event loop's: never blocking
            resume_reads(server)
            server.recv(100)
            assert hold_reads(server)
            assert server.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) >= 1 << 16


def test_the_hook_skips_the_shutdown_of_a_guarded_connection_only() -> None:
    """hypercorn's ``write_eof()``, Twisted's orderly close: no FIN while reloadkit guards it;
    its own user timeout comes back after."""
    from reloadkit.child import adopt

    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname(), timeout=5) as client:
        server, _ = listener.accept()
        with server:
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 1234)
            previous = guard_shutdown(server)
            assert previous == 1234
            assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == TAKEN_USER_TIMEOUT
            adopt._shutdown(server, socket.SHUT_WR)
            client.settimeout(0.2)
            with pytest.raises(TimeoutError):
                client.recv(100)  # no end of file
            unguard_shutdown(server, previous)
            assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 1234
            adopt._shutdown(server, socket.SHUT_WR)
            client.settimeout(5)
            assert client.recv(100) == b""
