"""Keep-alive takeover, the kernel side: finding a stopping generation's connections, taking
a duplicate of each, and deciding (purely) what becomes of it.

An asyncio server told to stop (uvicorn, hypercorn, aiohttp) closes its idle keep-alive
connections, and a request its client sends meanwhile is lost (``Connection reset by peer``;
Python clients and wrk do not retry it); a server that dies of the signal (waitress) loses
the requests queued on them. Just before the stop signal, while the drain holds the
generation frozen, every established connection it holds on an address we hold is
duplicated into the supervisor with ``pidfd_getfd`` (Linux 5.6+). The duplicate does not
disturb the server: it keeps serving on its descriptor while it drains. But its ``close()``
now only drops its own reference, so no FIN reaches the client (``shutdown()`` still would:
that connection then closes as before).

While the generation stops, its descriptors are looked at every few milliseconds, and
:class:`Parking` decides:

* a connection the generation no longer holds, while it still runs, was closed by it on
  purpose (a graceful server closes idle connections and waits for the responses in
  progress): it is *released*, served from now on by the next generation (kept.py);
* at the generation's exit, the connections it still held are released too, unless it was
  killed (the stop timeout, or a signal nobody sent to stop it): a response may have been in
  progress then, so the duplicate is closed and the client sees the end of file, as before.

A released connection whose TCP state is no longer ESTABLISHED (the server shut it down, or
the client closed it with nothing unread) is closed: :func:`usable`.

A taken connection has its reads held (:func:`hold_reads`, where no read can be caught by
it) until it is released: the stopping server's poll does not see the next request, so it
cannot read a request it will not answer (aiohttp drops what arrives once it has begun to
close its idle connections), and the request waits in the kernel for the next generation.
A server that has not let go of it 0.5 s later, and sits idle on it, gets its reads back
and serves that request itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import signal
import socket
import struct
import sys
import termios
from collections.abc import Iterable
from dataclasses import dataclass

from reloadkit.child.adopt import TAKEN_USER_TIMEOUT
from reloadkit.net.sockdiag import (
    _TCPI_BYTES_RECEIVED,
    _TCPI_BYTES_SENT,
    _TCPI_LAST_DATA_SENT,
    socket_fds,
    tcp_connections,
)

__all__ = [
    "CLOSE",
    "CUT",
    "GRACEFUL",
    "Ends",
    "KILLED",
    "RELEASE",
    "Mark",
    "SIGNALLED",
    "Parking",
    "connections_on",
    "exit_kind",
    "guard_shutdown",
    "hold_reads",
    "mark",
    "peek",
    "resume_reads",
    "socket_fds",
    "read_unanswered",
    "still_receiving",
    "refused",
    "replay",
    "take_fd",
    "takeover_unavailable",
    "tcp_state",
    "unguard_shutdown",
    "unread",
    "usable",
]

RELEASE = "release"  # serve it from the next generation
CLOSE = "close"  # close the duplicate: the client sees what it would have seen without us
CUT = "cut"  # it died of the stop signal: only what it had not begun to answer is served on
GRACEFUL, SIGNALLED, KILLED = "graceful", "signalled", "killed"  # how a generation ended

_SYS_PIDFD_GETFD = 438  # one number on every Linux architecture (syscalls from 424 on are shared)
TCP_ESTABLISHED = 1
TCP_CLOSE_WAIT = 8  # the client closed its side; what it sent before is still to be served
_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT})
_REPLAY_LIMIT = 1 << 16  # the unread bytes copied at the take (the next request's head)
_REQUEST_LINE = re.compile(rb"[A-Z][A-Z-]* [^ \r\n]")  # where an HTTP/1 request begins
_HELD_LOWAT = 1 << 30  # above any request: the kernel caps it at half of tcp_rmem's maximum


def takeover_unavailable() -> str | None:
    """Why connections cannot be taken from another process here, or None."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    if not hasattr(os, "pidfd_open"):
        return "no os.pidfd_open (Python 3.9+)"
    return None


_libc: ctypes.CDLL | None = None


def take_fd(pidfd: int, fd: int) -> socket.socket:
    """A duplicate of descriptor ``fd`` of the process behind ``pidfd``, as a socket (close
    on exec). Its blocking mode is left alone: the file description is the server's too."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    new = int(_libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0))
    if new < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"pidfd_getfd: {os.strerror(code)}")
    try:
        return socket.socket(fileno=new)
    except OSError:
        os.close(new)
        raise


Ends = tuple[int, tuple[str, int], tuple[str, int]]  # family, local address, the client's


def connections_on(ports: set[int], paths: set[str]) -> dict[int, Ends | None]:
    """Established connections whose local end is one of ``ports`` (TCP) or ``paths``
    (accepted Unix stream sockets): inode -> its ends (None for Unix)."""
    found: dict[int, Ends | None] = {}
    if ports:
        for conn in tcp_connections(ports) or ():
            found[conn.inode] = (conn.family, conn.local, conn.remote)
    if paths:
        with contextlib.suppress(OSError), open("/proc/net/unix", encoding="utf-8", errors="replace") as lines:
            next(lines, None)
            for line in lines:  # Num RefCount Protocol Flags Type St Inode Path
                fields = line.split()
                if len(fields) >= 8 and fields[4] == "0001" and fields[5] == "03" and fields[7] in paths:
                    found[int(fields[6])] = None
    return found


def tcp_state(sock: socket.socket) -> int | None:
    """The kernel's TCP state of ``sock`` (TCP_INFO), None for another kind of socket."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0])
    except OSError:
        return 0


def hold_reads(sock: socket.socket, one_thread: bool = False) -> bool:
    """Keep every reader of ``sock`` (the server too: the socket is shared) from being woken
    by the next request: a receive low-water mark far above it. Its bytes wait in the kernel;
    an end of file still wakes readers.

    Only for a server that reads it without blocking: a blocking ``recv()`` takes its
    low-water mark once, when it begins, and one begun under the mark would wait for a full
    buffer even after :func:`resume_reads` (werkzeug's threads read the next request that
    way). With a request waiting unread, only for a server of ``one_thread`` (its event
    loop): gunicorn's gthread, told by its poller that the socket is readable, has a thread
    make it blocking and read it. False when not held."""
    try:
        if not fcntl.fcntl(sock.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK or (unread(sock) is not False and not one_thread):
            return False
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, _HELD_LOWAT)
    except OSError:
        return False
    return True


def resume_reads(sock: socket.socket) -> None:
    """Undo :func:`hold_reads`; the kernel wakes a reader whose bytes already wait."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)


def guard_shutdown(sock: socket.socket) -> int | None:
    """Have reloadkit's hook in the server (child/adopt.py) skip a ``shutdown()`` of ``sock``:
    its close then ends nothing, and a request it read and dropped can be served on. Returns
    the mark's previous value, for :func:`unguard_shutdown`; None when not marked."""
    try:
        previous = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, TAKEN_USER_TIMEOUT)
    except OSError:
        return None
    return int(previous)


def unguard_shutdown(sock: socket.socket, previous: int) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, previous)


@dataclass(frozen=True)
class Mark:
    """A TCP connection's counters at one moment: bytes received and sent in its life, how
    many of those received were still unread, and a copy of those (:func:`replay`)."""

    received: int
    unread: int
    sent: int
    waiting: bytes = b""


def mark(sock: socket.socket) -> Mark | None:
    """``sock``'s counters now; None for another kind of socket, an older kernel, or bytes
    arriving all the while (the counters are read one after the other: they must agree)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    for _ in range(3):
        received = _received_sent(sock)
        if received is None:
            return None
        try:
            waiting = struct.unpack("=i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
        except OSError:
            return None
        copy = peek(sock, min(waiting, _REPLAY_LIMIT)) if waiting else b""  # b"": read meanwhile by its server
        if _received_sent(sock) == received:
            return Mark(received[0], int(waiting), received[1], copy)
    return None


def _received_sent(sock: socket.socket) -> tuple[int, int] | None:
    """Bytes ``sock`` has received and sent in its life (TCP_INFO); None when unknown."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCPI_BYTES_SENT + 8)
    except OSError:
        return None
    if len(info) < _TCPI_BYTES_SENT + 8:
        return None
    (received,) = struct.unpack_from("=Q", info, _TCPI_BYTES_RECEIVED)
    (sent,) = struct.unpack_from("=Q", info, _TCPI_BYTES_SENT)
    return int(received), int(sent)


def still_receiving(held_at: tuple[int, int] | None, now: tuple[int, int] | None, waiting: bytes) -> bool:
    """Was a connection whose reads are held in the middle of a request (bytes received, sent
    then: ``held_at``; None when it was held at a request boundary) still receiving it, an
    upload's body? Bytes have come since, its server sent none, and what waits unread
    (``waiting``, its first bytes) does not begin a request line: the next request after an
    answer the boundary test missed (a same-millisecond one) does. Its reads must be given
    back, or the server waits for the rest."""
    if held_at is None or now is None or not waiting or _REQUEST_LINE.match(waiting) is not None:
        return False
    return now[0] > held_at[0] and now[1] == held_at[1]


def peek(sock: socket.socket, size: int = 64) -> bytes:
    """The first ``size`` bytes waiting unread on ``sock``, left there (b"" for none)."""
    try:
        return sock.recv(size, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError:
        return b""


def read_unanswered(sock: socket.socket, since: Mark | None = None) -> bool:
    """Did ``sock``'s owner read bytes it never answered? A graceful server that closes such a
    connection dropped a request it had read (aiohttp drops one that arrived while it
    stopped): nobody will answer it, so the client had better see the end of file now.

    With ``since`` (:func:`mark` when it was taken): it read bytes after that and sent none.
    Otherwise its last receipt came in a later millisecond than its last send, with nothing
    waiting unread; the kernel keeps those times in jiffies (4 ms at HZ=250), so a request
    that followed its answer within one goes unseen."""
    if since is not None and (now := mark(sock)) is not None:
        read = (now.received - since.received) - (now.unread - since.unread)
        return read > 0 and now.sent == since.sent
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or unread(sock):
        return False
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCPI_LAST_DATA_SENT + 12)
    except OSError:
        return False
    if len(info) < _TCPI_LAST_DATA_SENT + 12:
        return False
    sent_ago, received_ago = struct.unpack_from("=I4xI", info, _TCPI_LAST_DATA_SENT)
    return received_ago < sent_ago


def replay(sock: socket.socket, since: Mark | None) -> bytes:
    """What to send the next generation first for a request ``sock``'s owner read after
    ``since`` and never answered, when it read only bytes copied then: those bytes (b"" when
    it cannot be told). A server may act on events it fetched before it was frozen (daphne
    reads a request it then cancels as its reactor stops); the client's request is in the
    copy, which begins a request line, so the next generation can be given it."""
    if since is None or not since.waiting or len(since.waiting) != since.unread or _REQUEST_LINE.match(since.waiting) is None:
        return b""
    now = mark(sock)
    if now is None or now.sent != since.sent:
        return b""
    read = (now.received - since.received) - (now.unread - since.unread)
    return since.waiting[:read] if 0 < read <= len(since.waiting) else b""


def unread(sock: socket.socket) -> bool | None:
    """Are bytes waiting to be read on ``sock``? None: the peer closed its side, nothing waits."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)) or None
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return None


def usable(state: int | None, waiting: bool | None, decision: str = RELEASE) -> bool:
    """Can a released connection still be served? ``state``: its TCP state (None: a Unix
    socket); ``waiting``: :func:`unread` (None: the peer has closed its side, nothing left).

    ESTABLISHED: yes (a server that called ``shutdown()`` moved it on to FIN_WAIT). CLOSE_WAIT
    (the client closed its side): only for the request it sent before. A Unix socket: unless
    its client is gone. A CUT connection: only with a request waiting, not begun."""
    if decision == CUT and not waiting:
        return False
    if state is None:
        return waiting is not None
    return state == TCP_ESTABLISHED or (state == TCP_CLOSE_WAIT and bool(waiting))


def exit_kind(status: int, killed_by_us: bool) -> str:
    """How a stopping generation ended (``status`` is shell-style, 128 + signal): GRACEFUL, its
    own exit (a server exits once its responses are done); SIGNALLED, death of the stop
    signal (waitress: a response may have been cut, but a request it had not read was not
    begun); KILLED, the stop timeout or another signal (a response may have been cut)."""
    if killed_by_us or (status > 128 and status - 128 not in _STOP_SIGNALS):
        return KILLED
    return SIGNALLED if status > 128 else GRACEFUL


@dataclass
class _Parked:
    pid: int  # the generation whose descriptors are looked at
    keys: set[int]  # the connections' socket inodes it held when they were taken
    boundary: set[int]  # those at a request boundary when it was told to stop


class Parking:
    """Connections taken from stopping generations, each waiting for its generation to let go
    of it: the decisions only (the loop looks at the processes and acts)."""

    def __init__(self) -> None:
        self._parked: dict[int, _Parked] = {}

    def __bool__(self) -> bool:
        return any(parked.keys for parked in self._parked.values())

    def park(self, pid: int, keys: Iterable[int], boundary: Iterable[int] = ()) -> None:
        """``boundary``: the keys whose connection sat at a request boundary when ``pid`` was
        told to stop (frozen): should the signal kill it, no answer was begun on them."""
        parked = self._parked.setdefault(pid, _Parked(pid, set(), set()))
        parked.keys.update(keys)
        parked.boundary.update(boundary)

    def pids(self) -> list[int]:
        return [pid for pid, parked in self._parked.items() if parked.keys]

    def held_by(self, pid: int) -> set[int]:
        parked = self._parked.get(pid)
        return set(parked.keys) if parked else set()

    def look(self, pid: int, still_held: set[int]) -> list[tuple[int, str]]:
        """``pid`` runs and holds ``still_held``: the connections it let go of are released."""
        parked = self._parked.get(pid)
        if parked is None:
            return []
        gone = sorted(parked.keys - still_held)
        parked.keys -= set(gone)
        return [(key, RELEASE) for key in gone]

    def exited(self, pid: int, kind: str) -> list[tuple[int, str]]:
        """``pid`` has ended (:func:`exit_kind`): what it still held is released (GRACEFUL),
        closed (KILLED), or served on only where no answer had begun (SIGNALLED)."""
        parked = self._parked.pop(pid, None)
        if parked is None:
            return []
        decision = {GRACEFUL: RELEASE, SIGNALLED: CUT}.get(kind, CLOSE)
        return [(key, RELEASE if decision == CUT and key in parked.boundary else decision) for key in sorted(parked.keys)]


def refused(exc: OSError) -> bool:
    """Does this error say no descriptor can be taken at all (rather than this one)?"""
    return exc.errno in (errno.EPERM, errno.EACCES, errno.ENOSYS, errno.EOPNOTSUPP)

