"""What sock_diag says of real loopback connections (no processes)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator

import pytest

from reloadkit.net import sockdiag

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(not sys.platform.startswith("linux") or not sockdiag.available(), reason="sock_diag is Linux's"),
]


@pytest.fixture
def server() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


def _ends(client: socket.socket) -> tuple[int, tuple[str, int], tuple[str, int]]:
    return client.family, client.getpeername()[:2], client.getsockname()[:2]


def test_a_server_end_is_taken_once_accepted_and_stays_taken_when_the_server_closed_first(server: socket.socket) -> None:
    with socket.create_connection(server.getsockname(), timeout=5) as client:
        assert sockdiag.server_end_taken(*_ends(client)) is False  # queued: no inode yet
        conn, _ = server.accept()
        assert sockdiag.server_end_taken(*_ends(client)) is True
        conn.close()  # before the client's end of file: the server end is orphaned (FIN_WAIT2)
        assert client.recv(1) == b""
        assert sockdiag.server_end_taken(*_ends(client)) is True
        ends = _ends(client)
    # ... and then in TIME_WAIT for a minute, still without an inode: closed, not queued
    state = sockdiag.ask(sockdiag._inet_request(*ends))
    assert state is not None and state[1] == 6  # TCP_TIME_WAIT
    assert sockdiag.server_end_taken(*ends) is True


def test_established_connections_on_a_port_come_with_their_inodes_and_queues(server: socket.socket) -> None:
    port = server.getsockname()[1]
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5) as client, \
                socket.create_connection(other_server.getsockname(), timeout=5):
            conn, _ = server.accept()
            with conn:
                client.sendall(b"GET / HTTP/1.1\r\n\r\n")
                found = sockdiag.tcp_connections([port], info=True)
                assert found is not None
                (mine,) = found  # the server end; neither the client's nor the other port's
                assert mine.inode == os.fstat(conn.fileno()).st_ino
                assert mine.local == conn.getsockname()[:2] and mine.remote == client.getsockname()[:2]
                assert mine.queues is not None and mine.queues.rqueue + mine.queues.received >= 18


def test_a_listener_dump_finds_listeners_only(server: socket.socket) -> None:
    port = server.getsockname()[1]
    with socket.create_connection(server.getsockname(), timeout=5):
        found = sockdiag.tcp_connections([port], (sockdiag.LISTEN,))
        assert found is not None
        assert [conn.inode for conn in found] == [os.fstat(server.fileno()).st_ino]
        assert found[0].state == sockdiag.LISTEN
