"""Moving an address from one socket to the next, and relaying what was queued: real
sockets on loopback and in a temp dir, no processes."""

from __future__ import annotations

import fcntl
import os
import selectors
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reloadkit.errors import BindError
from reloadkit.net.binding import Listener, open_listeners, parse_binds
from reloadkit.net.handover import Relay, Succession

pytestmark = pytest.mark.timeout(30)
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reuseport steering is Linux's")


@pytest.fixture
def tcp() -> Iterator[Listener]:
    with open_listeners(parse_binds(["127.0.0.1:0"]), 64) as listeners:
        yield listeners[0]


@pytest.fixture
def unix(tmp_path: Path) -> Iterator[Listener]:
    with open_listeners(parse_binds([f"unix:{tmp_path / 'app.sock'},mode=600"]), 64) as listeners:
        yield listeners[0]


def _connect(listener: Listener) -> socket.socket:
    if listener.unix_path is not None:
        client = socket.socket(socket.AF_UNIX)
        client.connect(listener.unix_path)
        return client
    return socket.create_connection(listener.sock.getsockname()[:2], timeout=5)


def _landed(candidates: list[socket.socket]) -> socket.socket:
    """The one socket among ``candidates`` that has a connection queued (and take it)."""
    selector = selectors.DefaultSelector()
    for sock in candidates:
        selector.register(sock, selectors.EVENT_READ)
    ready = [key.fileobj for key, _ in selector.select(5)]
    selector.close()
    assert len(ready) == 1, f"queued on {len(ready)} sockets"
    sock = ready[0]
    assert isinstance(sock, socket.socket)
    sock.accept()[0].close()
    return sock


def _nonblocking(sock: socket.socket) -> bool:
    return bool(fcntl.fcntl(sock.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK)


@linux_only
def test_tcp_successor_gets_nothing_until_the_switch_then_everything(tcp: Listener) -> None:
    succession = Succession(tcp)
    old = tcp.sock
    new = succession.prepare()
    assert new is not None and new.getsockname() == old.getsockname()
    for _ in range(5):
        with _connect(tcp):
            assert _landed([old, new]) is old
    assert succession.switch(new) and tcp.sock is new and succession.others == [old]
    for _ in range(5):
        with _connect(tcp):
            assert _landed([old, new]) is new
    succession.close()
    assert old.fileno() == -1


@linux_only
def test_tcp_steering_follows_the_kernel_when_an_older_socket_leaves(tcp: Listener) -> None:
    """Three sockets in the group: the kernel moves the last one into a freed slot; the
    program must still point at the current socket afterwards."""
    succession = Succession(tcp)
    first = tcp.sock
    second = succession.prepare()
    assert second is not None
    succession.switch(second)
    third = succession.prepare()  # e.g. a pending child beside a still-stopping one
    assert third is not None
    succession.switch(third)
    assert succession.release(held=[second]) == []  # `first` stays while `second` is held (below)
    assert first.fileno() != -1 and succession.members == [first, second, third]
    for _ in range(5):
        with _connect(tcp):
            assert _landed([first, second, third]) is third
    succession.release(held=[])  # both leave: `third` takes slot 0
    assert first.fileno() == -1 and second.fileno() == -1
    assert succession.members == [third] and succession.others == []
    with _connect(tcp):
        assert _landed([third]) is third


@linux_only
def test_no_connection_reaches_a_held_old_socket_while_another_one_leaves(tcp: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a socket leaves the group and before the program points at the current socket's
    new slot, the kernel hashes new connections over the group: one could reach an old socket
    whose child is shutting down (it accepts it and closes it unanswered). Connections made
    at that very moment must all reach the current socket."""
    succession = Succession(tcp)
    first = tcp.sock
    second = succession.prepare()
    assert second is not None
    succession.switch(second)
    third = succession.prepare()
    assert third is not None
    succession.switch(third)
    clients: list[socket.socket] = []
    shutdown = socket.socket.shutdown

    def leave_then_connect(sock: socket.socket, how: int) -> None:
        shutdown(sock, how)
        if sock is first:  # in the window: before the program is pointed anew
            clients.extend(_connect(tcp) for _ in range(40))

    monkeypatch.setattr(socket.socket, "shutdown", leave_then_connect)
    succession.release(held=[second])
    monkeypatch.undo()
    clients.extend(_connect(tcp) for _ in range(40))
    try:
        assert succession.take_queued([second]) == [], "a connection reached the held old socket"
    finally:
        for client in clients:
            client.close()
        succession.release(held=[])


@linux_only
def test_release_returns_what_was_queued_on_the_old_socket(tcp: Listener) -> None:
    succession = Succession(tcp)
    old = tcp.sock
    waiting = _connect(tcp)  # queued on the old socket, never accepted by its child
    new = succession.prepare()
    assert new is not None
    succession.switch(new)
    leftovers = succession.release(held=[])
    assert len(leftovers) == 1 and leftovers[0].getpeername() == waiting.getsockname()
    assert old.fileno() == -1
    for conn in (*leftovers, waiting):
        conn.close()


@linux_only
def test_a_held_old_socket_stays_open(tcp: Listener) -> None:
    succession = Succession(tcp)
    old = tcp.sock
    new = succession.prepare()
    assert new is not None
    succession.switch(new)
    assert succession.release(held=[old]) == [] and old.fileno() != -1 and succession.others == [old]


@pytest.mark.parametrize("child_mode", ["nonblocking", "blocking"])
def test_taking_the_queue_leaves_the_shared_blocking_flag_as_it_was(tcp: Listener, child_mode: str) -> None:
    """O_NONBLOCK belongs to the open file description the child shares: an asyncio child
    left with a blocking listener hangs in accept() for good."""
    old = tcp.sock
    os.set_blocking(old.fileno(), child_mode == "blocking")
    waiting = _connect(tcp)
    succession = Succession(tcp)
    new = succession.prepare()
    if new is None:  # no reuseport here: a Unix test covers the hand-over itself
        waiting.close()
        return
    succession.switch(new)
    taken = succession.take_queued([old])
    assert len(taken) == 1
    assert _nonblocking(old) == (child_mode == "nonblocking")
    for conn in (*taken, waiting):
        conn.close()


def test_unix_successor_is_linked_over_the_path_at_the_switch(unix: Listener) -> None:
    assert unix.unix_path is not None and unix.bound_path is not None
    path = Path(unix.unix_path)
    first_name = Path(unix.bound_path)
    assert first_name.parent == path.parent and os.path.samefile(first_name, path)
    assert (path.stat().st_mode & 0o777) == 0o600
    succession = Succession(unix)
    old = unix.sock
    new = succession.prepare()
    assert new is not None
    second_name = Path(new.getsockname())
    assert (second_name.stat().st_mode & 0o777) == 0o600
    with _connect(unix):
        assert _landed([old, new]) is old
    succession.switch(new)
    assert os.path.samefile(second_name, path) and unix.unix_inode == path.stat().st_ino
    assert first_name.exists()  # a server may chmod or remove its own name: it stays
    with _connect(unix):
        assert _landed([old, new]) is new
    succession.release(held=[])
    assert not first_name.exists() and old.fileno() == -1
    unix.close()
    assert not path.exists() and not second_name.exists()


def test_a_unix_path_taken_over_by_someone_else_is_left_alone(unix: Listener, tmp_path: Path) -> None:
    assert unix.unix_path is not None
    path = Path(unix.unix_path)
    path.unlink()
    path.write_text("theirs\n")
    succession = Succession(unix)
    assert succession.prepare() is None
    assert path.read_text() == "theirs\n"


def _pump(selector: selectors.BaseSelector, until: threading.Event) -> None:
    while not until.is_set():
        for key, _events in selector.select(0.05):
            key.data()


def test_relay_carries_both_ways_and_passes_the_half_close(tcp: Listener) -> None:
    """client -> (accepted here) relay -> upstream listener: a request goes up whole, the
    answer comes back, and each end of file is passed on."""
    upstream_listener = socket.create_server(("127.0.0.1", 0))
    client = _connect(tcp)
    accepted, _ = tcp.sock.accept()
    upstream = socket.create_connection(upstream_listener.getsockname())
    server_side, _ = upstream_listener.accept()
    selector = selectors.DefaultSelector()
    closed: list[Relay] = []
    relay = Relay(accepted, upstream, selector, closed.append)
    done = threading.Event()
    loop = threading.Thread(target=_pump, args=(selector, done))
    loop.start()
    try:
        request = b"x" * 1_000_000  # more than the socket buffers hold: flow control works
        sender = threading.Thread(target=client.sendall, args=(request,))
        sender.start()
        received = b""
        server_side.settimeout(10)
        while len(received) < len(request):
            received += server_side.recv(65536)
        sender.join(10)
        assert received == request
        client.shutdown(socket.SHUT_WR)
        assert server_side.recv(10) == b""  # the client's end of file reached the server
        server_side.sendall(b"answer")
        server_side.close()
        client.settimeout(10)
        answer = b""
        while chunk := client.recv(100):
            answer += chunk
        assert answer == b"answer"
    finally:
        done.set()
        loop.join(10)
        client.close()
        upstream_listener.close()
    assert closed == [relay] and relay.closed and not selector.get_map()


@linux_only
def test_a_second_reloadkit_on_the_same_port_is_refused(tcp: Listener) -> None:
    """SO_REUSEPORT would let a second socket of ours share the port silently."""
    port = tcp.sock.getsockname()[1]
    with pytest.raises(BindError, match="address already in use"):
        with open_listeners(parse_binds([f"127.0.0.1:{port}"])):
            pass
    with pytest.raises(BindError, match="address already in use"):
        with open_listeners(parse_binds([f"0.0.0.0:{port}"])):
            pass


def test_a_unix_path_with_no_room_for_a_hidden_name_is_bound_in_place(tmp_path: Path) -> None:
    """Socket names are limited to 107 bytes: a short name deep in a long path leaves no
    room for a hidden one. The socket is then bound at the path and shared by every
    generation (no successor, no warning on each restart)."""
    folder = tmp_path / ("d" * max(1, 104 - len(str(tmp_path)) - 1))
    folder.mkdir()
    path = folder / "s"
    assert len(str(path)) <= 107 < len(str(folder / f".rk{os.getpid()}-1"))
    with open_listeners(parse_binds([f"unix:{path}"]), 8) as listeners:
        listener = listeners[0]
        assert listener.bound_path is None and listener.sock.getsockname() == str(path)
        assert Succession(listener).prepare() is None
        with _connect(listener):
            assert _landed([listener.sock]) is listener.sock
    assert not path.exists()
