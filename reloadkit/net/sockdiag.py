"""The kernel's view of our TCP connections, through ``sock_diag`` netlink (Linux).

/proc/net/tcp is a text table of every TCP socket of the machine: with tens of thousands
of connections in TIME_WAIT (a client looping over a server that closes each connection
keeps that many for a minute) one read takes a third of a second, and the supervisor reads
it on each look at a stopping child. A dump asked of ``inet_diag`` with a state mask lets
the kernel skip those rows, and a question about one connection is answered by its
addresses alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "ESTABLISHED",
    "LISTEN",
    "TcpConnection",
    "TcpQueues",
    "ask",
    "available",
    "server_end_taken",
    "socket_fds",
    "tcp_connections",
    "tcp_queues",
]

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLM_F_DUMP = 0x300
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_NOCOOKIE = 0xFFFFFFFF
_INET_DIAG_INFO = 2
_INET_DIAG_MSG = 72  # sizeof(struct inet_diag_msg)
_TCPI_LAST_DATA_SENT = 44  # offsetof(struct tcp_info, tcpi_last_data_sent): milliseconds ago
_TCPI_BYTES_RECEIVED = 128  # offsetof(struct tcp_info, tcpi_bytes_received), Linux >= 4.1
_TCPI_BYTES_SENT = 200  # offsetof(struct tcp_info, tcpi_bytes_sent), Linux >= 4.19

# TCP states (include/net/tcp_states.h)
ESTABLISHED = 1
_SYN_RECV = 3
_CLOSE_WAIT = 8
LISTEN = 10
_NEW_SYN_RECV = 12
#: A server end in one of these states with no inode waits in a listener's queue; in any
#: other (FIN_WAIT, LAST_ACK, TIME_WAIT...) its owner has closed it: it was accepted.
_QUEUED = frozenset({ESTABLISHED, _SYN_RECV, _CLOSE_WAIT, _NEW_SYN_RECV})


class _Diag:
    """One netlink socket for sock_diag queries."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG)
        self.sock.settimeout(0.5)
        self.seq = 0

    def _send(self, payload: bytes, flags: int) -> int:
        self.seq += 1
        header = struct.pack("=IHHII", 16 + len(payload), _SOCK_DIAG_BY_FAMILY, flags, self.seq, 0)
        self.sock.send(header + payload)
        return self.seq

    def ask(self, payload: bytes) -> bytes | None:
        """The first answer's payload; None when the kernel knows no such socket."""
        seq = self._send(payload, _NLM_F_REQUEST)
        while True:
            data = self.sock.recv(65536)
            length, kind, _flags, answered, _pid = struct.unpack_from("=IHHII", data)
            if answered != seq:
                continue  # a late answer to an earlier question
            if kind == _NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, 16)
                if code in (-errno.ENOENT, 0):
                    return None
                raise OSError(-code, os.strerror(-code))
            return data[16:length]

    def dump(self, payload: bytes) -> Iterator[bytes]:
        """Every answer's payload of a dump request."""
        seq = self._send(payload, _NLM_F_REQUEST | _NLM_F_DUMP)
        while True:
            data = self.sock.recv(1 << 20)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _flags, answered, _pid = struct.unpack_from("=IHHII", data, offset)
                if length < 16:
                    return
                message = data[offset + 16 : offset + length]
                offset += (length + 3) & ~3
                if answered != seq:
                    continue
                if kind == _NLMSG_DONE:
                    return
                if kind == _NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", message)
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    return
                yield message


_diag: _Diag | None = None
_diag_failed = False


def _get_diag() -> _Diag | None:
    global _diag, _diag_failed
    if _diag is None and not _diag_failed:
        try:
            _diag = _Diag()
        except OSError:
            _diag_failed = True
    return _diag


def available() -> bool:
    return _get_diag() is not None


def ask(payload: bytes) -> bytes | None:
    """One sock_diag question (see :meth:`_Diag.ask`); OSError where the kernel has no sock_diag."""
    diag = _get_diag()
    if diag is None:
        raise OSError(errno.EOPNOTSUPP, "no sock_diag here")
    return diag.ask(payload)


def _address(family: int, raw: bytes) -> str:
    return socket.inet_ntop(family, raw[: 4 if family == socket.AF_INET else 16])


def _inet_request(family: int, local: tuple, remote: tuple, ext: int = 0, states: int = 0xFFFFFFFF) -> bytes:
    def address(host: str) -> bytes:
        return socket.inet_pton(family, host).ljust(16, b"\0")

    sockid = struct.pack("!HH", local[1], remote[1]) + address(local[0]) + address(remote[0])
    sockid += struct.pack("=III", 0, _NOCOOKIE, _NOCOOKIE)
    return struct.pack("=BBBxI", family, socket.IPPROTO_TCP, ext, states) + sockid


def _tcp_info(answer: bytes) -> bytes | None:
    """The ``tcp_info`` attribute of an ``inet_diag_msg`` answer."""
    offset = _INET_DIAG_MSG
    while offset + 4 <= len(answer):
        length, kind = struct.unpack_from("=HH", answer, offset)
        if length < 4:
            break
        if kind == _INET_DIAG_INFO:
            return answer[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return None


@dataclass(frozen=True)
class TcpQueues:
    """What the kernel says of one TCP connection: bytes unread by its owner (``rqueue``),
    bytes not yet acknowledged by the peer (``wqueue``), bytes received in its life, how
    many milliseconds ago it last sent and last received data, and bytes sent in its life
    (None before Linux 4.19)."""

    rqueue: int
    wqueue: int
    received: int
    sent_ago: int
    received_ago: int
    sent: int | None = None

    def at_request_boundary(self) -> bool:
        """Does its server seem to be between a response and the next request (a client that
        does not pipeline)? Nothing unacknowledged, and either the next request waits unread,
        or the last send came after the last receipt: in a later millisecond, or in the same
        one if both are 20 ms old (a quick answer; a request still served then whose arrival
        fell in the millisecond of the previous answer looks the same). A connection that has
        sent nothing yet is at one only while its server has read nothing of it: the kernel
        counts its "last send" from the handshake, which made a first request served for
        20 ms look answered."""
        if self.wqueue:
            return False
        if self.sent == 0:
            return self.rqueue == self.received
        return bool(self.rqueue) or self.sent_ago < self.received_ago or (
            self.sent_ago == self.received_ago and self.sent_ago >= 20)


def _queues(answer: bytes) -> TcpQueues | None:
    if len(answer) < _INET_DIAG_MSG:
        return None
    rqueue, wqueue = struct.unpack_from("=II", answer, 56)  # idiag_rqueue, idiag_wqueue
    info = _tcp_info(answer)
    if info is None or len(info) < _TCPI_BYTES_RECEIVED + 8:
        return None
    sent_ago, received_ago = struct.unpack_from("=I4xI", info, _TCPI_LAST_DATA_SENT)
    (received,) = struct.unpack_from("=Q", info, _TCPI_BYTES_RECEIVED)
    sent = struct.unpack_from("=Q", info, _TCPI_BYTES_SENT)[0] if len(info) >= _TCPI_BYTES_SENT + 8 else None
    return TcpQueues(rqueue, wqueue, int(received), sent_ago, received_ago, None if sent is None else int(sent))


def tcp_queues(family: int, local: tuple, remote: tuple) -> TcpQueues | None:
    """The queues of the TCP socket at ``local`` connected to ``remote``; None when unknown."""
    try:
        answer = ask(_inet_request(family, local[:2], remote[:2], ext=1 << (_INET_DIAG_INFO - 1)))
    except (OSError, ValueError):
        return None
    return None if answer is None else _queues(answer)


def server_end_taken(family: int, local: tuple, remote: tuple) -> bool | None:
    """Is the server end (at ``local``, its client at ``remote``) accepted, or closed since?

    A queued server end has no inode yet. A closed one may linger without an inode too
    (TIME_WAIT when the server closed first, for a minute): its state tells them apart.
    """
    try:
        answer = ask(_inet_request(family, local[:2], remote[:2]))
    except (OSError, ValueError):
        return None
    if answer is None:
        return True  # gone: accepted, answered with an end of file, closed
    state = answer[1]  # inet_diag_msg.idiag_state
    (inode,) = struct.unpack_from("=I", answer, 68)  # inet_diag_msg.idiag_inode
    return inode != 0 or state not in _QUEUED


@dataclass(frozen=True)
class TcpConnection:
    family: int
    local: tuple[str, int]
    remote: tuple[str, int]
    state: int
    inode: int
    queues: TcpQueues | None  # with ``info=True``


def tcp_connections(
    ports: Iterable[int] | None, states: Iterable[int] = (ESTABLISHED,), *, info: bool = False
) -> list[TcpConnection] | None:
    """The TCP sockets of the machine in ``states`` whose local port is one of ``ports``
    (None: any port), both families; None when the kernel cannot be asked."""
    wanted = None if ports is None else set(ports)
    mask = 0
    for state in states:
        mask |= 1 << state
    ext = 1 << (_INET_DIAG_INFO - 1) if info else 0
    found: list[TcpConnection] = []
    diag = _get_diag()
    if diag is None:
        return None
    for family in (socket.AF_INET, socket.AF_INET6):
        request = struct.pack("=BBBxI", family, socket.IPPROTO_TCP, ext, mask) + bytes(48)
        try:
            for answer in diag.dump(request):
                if len(answer) < _INET_DIAG_MSG:
                    continue
                sport, dport = struct.unpack_from("!HH", answer, 4)
                if wanted is not None and sport not in wanted:
                    continue
                (inode,) = struct.unpack_from("=I", answer, 68)
                local = (_address(family, answer[8:24]), sport)
                remote = (_address(family, answer[24:40]), dport)
                found.append(TcpConnection(family, local, remote, answer[1], inode, _queues(answer) if info else None))
        except OSError as exc:
            if exc.errno in (errno.EAFNOSUPPORT, errno.ENOENT) and family == socket.AF_INET6:
                continue  # a kernel without IPv6
            return None
    return found


def socket_fds(pids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Socket inode -> (pid, fd) for every socket descriptor the processes hold (Linux)."""
    found: dict[int, tuple[int, int]] = {}
    for pid in pids:
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for name in names:
            with contextlib.suppress(OSError, ValueError):
                link = os.readlink(f"/proc/{pid}/fd/{name}")
                if link.startswith("socket:["):
                    found.setdefault(int(link[8:-1]), (pid, int(name)))
    return found
