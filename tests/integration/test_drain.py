"""The drain on a real child: a connection whose request has not arrived yet holds the stop.

A graceful asyncio server (aiohttp, uvicorn) closes, on SIGTERM, every connection it has
accepted but read no request from. A client that connected and, on a busy machine, has not
sent its request yet would lose it: ``RemoteDisconnected`` (1 of 6,833 requests across a
reload in CI). The drain used to take such a connection for an idle keep-alive one once the
child had run a quarter of a second.
"""

from __future__ import annotations

import functools
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from support import wait_for

from reloadkit.net.drain import Drain, _held_tcp, frozen, serving_connections
from reloadkit.net.kept import KeepAlive
from reloadkit.net.readiness import diag_available
from reloadkit.net.sockdiag import TcpQueues

pytestmark = [pytest.mark.timeout(60), pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")]

SERVER = """
import os, signal, socket, sys
listener = socket.socket(fileno=int(sys.argv[1]))
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # drops what it accepted: as aiohttp does
while True:
    conn, _ = listener.accept()
    request = b""
    while not request.endswith(b"\\r\\n\\r\\n"):
        request += conn.recv(65536)
    conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
    conn.close()
"""


@pytest.fixture
def child() -> Iterator[tuple[subprocess.Popen[bytes], socket.socket]]:
    """A naive server on a listening socket of ours."""
    listener = socket.create_server(("127.0.0.1", 0))
    fd = listener.fileno()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(fd)], pass_fds=[fd], env={"PYTHONDONTWRITEBYTECODE": "1"})
    try:
        yield proc, listener
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        listener.close()


def _run_drain_until(drain: Drain, done: bool | None, ran: float | None = None, timeout: float = 20.0) -> None:
    """Step ``drain`` as the supervisor's loop does until it is done (or has let the child run
    ``ran`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if drain.next_at is not None and time.monotonic() < drain.next_at:
            time.sleep(max(0.0, drain.next_at - time.monotonic()))
        if drain.step():
            assert done is not False, f"signalled after the child ran {drain._ran:.2f} s"
            return
        if ran is not None and drain._ran >= ran:
            return
    raise AssertionError("the drain neither ended nor let the child run long enough")


@pytest.mark.skipif(not diag_available(), reason="no sock_diag")
def test_a_connection_whose_request_has_not_arrived_holds_the_stop(child: tuple[subprocess.Popen[bytes], socket.socket]) -> None:
    proc, listener = child
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    wait_for(lambda: serving_connections(proc.pid, {port}, set()), 20, "the child to accept the connection")
    drain = Drain(proc.pid, signal.SIGTERM, {port}, set(), limit=3.0, settled=0.25)
    # Twice ``settled`` of the child's running time: an idle keep-alive connection would no
    # longer hold the stop; this one has not carried its request yet.
    _run_drain_until(drain, done=False, ran=0.5)
    client.sendall(b"GET / HTTP/1.0\r\n\r\n")  # the client, late, sends its request
    client.settimeout(10)
    answer = b""
    while chunk := client.recv(65536):
        answer += chunk
    assert answer.endswith(b"ok"), answer
    _run_drain_until(drain, done=True)
    assert proc.wait(10) == 0
    client.close()


def test_an_idle_connection_that_carried_a_request_does_not_hold_the_stop(child: tuple[subprocess.Popen[bytes], socket.socket]) -> None:
    """The other side of it: a keep-alive connection idle after its requests (here: one the
    child keeps after reading part of a request) lets the stop go after ``settled``."""
    proc, listener = child
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"GET / HTTP/1.0\r\n")  # a head not finished: the child has read it and waits
    wait_for(lambda: [name for name in serving_connections(proc.pid, {port}, set()) if not name.endswith(":unused")],
             20, "the child to accept the connection and its first bytes")
    drain = Drain(proc.pid, signal.SIGTERM, {port}, set(), limit=3.0, settled=0.25)
    _run_drain_until(drain, done=True)
    assert drain._ran < 3.0  # by the settling, not the limit
    client.close()


def _state(stat: str) -> bytes:
    with open(stat, "rb") as handle:
        return handle.read().rsplit(b")", 1)[1].split()[0]


def test_frozen_stops_for_the_block_what_runs_and_leaves_stopped_what_was() -> None:
    """The keep-alive takeover looks at a generation's other processes (gunicorn's workers)
    through :func:`frozen`: each is stopped, threads too, inside the block and running after
    it; one the drain had stopped already stays stopped for the drain to continue."""
    code = "import sys, threading; threading.Thread(target=threading.Event().wait, daemon=True).start(); sys.stdin.read()"
    running = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    stopped = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    try:
        wait_for(lambda: len(os.listdir(f"/proc/{running.pid}/task")) == 2, 20, "the second thread")
        os.kill(stopped.pid, signal.SIGSTOP)
        wait_for(lambda: _state(f"/proc/{stopped.pid}/stat") == b"T", 20, "the drain's freeze")
        with frozen([running.pid, stopped.pid]) as still:
            assert still == {running.pid, stopped.pid}
            for tid in os.listdir(f"/proc/{running.pid}/task"):
                assert _state(f"/proc/{running.pid}/task/{tid}/stat") == b"T"
        wait_for(lambda: _state(f"/proc/{running.pid}/stat") != b"T", 20, "the frozen child to run again")
        assert _state(f"/proc/{stopped.pid}/stat") == b"T"
    finally:
        for proc in (running, stopped):
            proc.kill()
            proc.wait(10)
            assert proc.stdin is not None
            proc.stdin.close()


LOOP_SERVER = """
import os, re, selectors, signal, socket, sys
listener = socket.socket(fileno=int(sys.argv[1]))
listener.setblocking(False)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
selector = selectors.DefaultSelector()
selector.register(listener, selectors.EVENT_READ)
selector.register(sys.stdin, selectors.EVENT_READ)
slow, buffers = [], {}
while True:
    for key, _ in selector.select():
        conn = key.fileobj
        if conn is listener:
            conn, _ = listener.accept()
            conn.setblocking(False)
            selector.register(conn, selectors.EVENT_READ)
        elif conn is sys.stdin:  # a line: answer the slow request
            sys.stdin.readline()
            slow.pop().sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 4\\r\\n\\r\\nslow")
        else:
            data = conn.recv(65536)
            if not data:
                selector.unregister(conn)
                conn.close()
                continue
            buffers[conn] = request = buffers.get(conn, b"") + data
            head, end, body = request.partition(b"\\r\\n\\r\\n")
            length = re.search(rb"Content-Length: (\\d+)", head)
            if not end or len(body) < (int(length.group(1)) if length else 0):
                continue  # the rest of it is on its way
            del buffers[conn]
            if head.startswith(b"GET /slow"):
                slow.append(conn)
            else:
                answer = b"got" if head.startswith(b"POST") else b"ok"
                conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(answer), answer))
"""


def _answer(client: socket.socket) -> bytes:
    client.settimeout(10)
    return client.recv(65536)


@pytest.mark.skipif(not diag_available(), reason="no sock_diag")
def test_while_a_response_is_under_way_the_other_connections_reads_are_held(
        loop_child: tuple[subprocess.Popen[bytes], socket.socket, KeepAlive]) -> None:
    """Under steady traffic the drain would find no moment without a response under way:
    while it waits, it holds the reads of the generation's connections (KeepAlive.hold_idle),
    so the requests under way end and no new one begins. A generation that exits before it
    is taken over gets them back, and the duplicates are closed: its clients see its end."""
    proc, listener, keepalive = loop_child
    port = listener.getsockname()[1]
    slow, idle = socket.create_connection(("127.0.0.1", port)), socket.create_connection(("127.0.0.1", port))
    try:
        idle.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert _answer(idle).endswith(b"ok")
        slow.sendall(b"GET /slow HTTP/1.1\r\n\r\n")  # read, and answered when told on stdin
        wait_for(lambda: len(serving_connections(proc.pid, {port}, set())) == 2, 20, "both connections")
        drain = Drain(proc.pid, signal.SIGTERM, {port}, set(), limit=30.0, settled=0.05, boundaries=True,
                      hold=functools.partial(keepalive.hold_idle, proc.pid))
        _run_drain_until(drain, done=False, ran=0.2)  # the slow response holds the stop
        assert len(keepalive.preheld) == 2
        idle.sendall(b"GET / HTTP/1.1\r\n\r\n")  # held: it waits in the kernel
        _run_drain_until(drain, done=False, ran=0.4)
        idle.setblocking(False)
        with pytest.raises(BlockingIOError):  # not answered: the child did not see it
            idle.recv(1)
        assert proc.stdin is not None
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        assert _answer(slow).endswith(b"slow")  # the response under way ends
        _run_drain_until(drain, done=True)  # no response under way now: the signal goes
        assert proc.wait(10) == 0
        keepalive.exited(proc.pid, "graceful")
        assert keepalive.preheld == {}
        try:  # its end, not a hang on a duplicate: a reset, as its request was left unread
            assert _answer(idle) == b""
        except ConnectionResetError:
            pass
    finally:
        for sock in (slow, idle):
            sock.close()


@pytest.mark.skipif(not diag_available(), reason="no sock_diag")
def test_an_upload_still_arriving_while_the_drain_waits_gets_its_reads_back(
        loop_child: tuple[subprocess.Popen[bytes], socket.socket, KeepAlive]) -> None:
    """A connection held in the middle of a request whose body is still on its way (bytes
    arrive, and its server sends nothing) gets its reads back at the next look, and is not
    held again: held, its server would wait for the rest and never answer."""
    proc, listener, keepalive = loop_child
    port = listener.getsockname()[1]
    slow, upload = socket.create_connection(("127.0.0.1", port)), socket.create_connection(("127.0.0.1", port))
    try:
        slow.sendall(b"GET /slow HTTP/1.1\r\n\r\n")  # keeps the drain waiting
        upload.sendall(b"POST /upload HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234")  # half of its body
        wait_for(lambda: all(queues.rqueue == 0 for queues in _queues(proc.pid, port)) and len(_queues(proc.pid, port)) == 2,
                 20, "the child to read both requests so far")
        drain = Drain(proc.pid, signal.SIGTERM, {port}, set(), limit=30.0, settled=0.05, boundaries=True,
                      hold=functools.partial(keepalive.hold_idle, proc.pid))
        _run_drain_until(drain, done=False, ran=0.2)
        assert len(keepalive.preheld) == 2  # neither is at a request boundary
        upload.sendall(b"56789")  # the rest of the body: bytes come, nothing is sent
        _run_drain_until(drain, done=False, ran=0.4)
        assert len(keepalive.preheld) == 1 and keepalive.receiving
        assert _answer(upload).endswith(b"got")  # its server read the rest and answered
        assert proc.stdin is not None
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        assert _answer(slow).endswith(b"slow")
        _run_drain_until(drain, done=True)
        assert proc.wait(10) == 0
        keepalive.exited(proc.pid, "graceful")
        assert keepalive.preheld == {} and keepalive.receiving == {}
    finally:
        for sock in (slow, upload):
            sock.close()


def _queues(pid: int, port: int) -> list[TcpQueues]:
    return [conn.queues for _fd, conn in _held_tcp(pid, {port}) if conn.queues is not None]


@pytest.fixture
def loop_child() -> Iterator[tuple[subprocess.Popen[bytes], socket.socket, KeepAlive]]:
    """LOOP_SERVER on a listening socket of ours, and a KeepAlive to hold its reads."""
    listener = socket.create_server(("127.0.0.1", 0))
    fd = listener.fileno()
    proc = subprocess.Popen([sys.executable, "-c", LOOP_SERVER, str(fd)], pass_fds=[fd], stdin=subprocess.PIPE,
                            env={"PYTHONDONTWRITEBYTECODE": "1"})
    keepalive = KeepAlive([], selectors.DefaultSelector(), lambda message: None)
    try:
        yield proc, listener, keepalive
    finally:
        keepalive.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        assert proc.stdin is not None
        proc.stdin.close()
        listener.close()
