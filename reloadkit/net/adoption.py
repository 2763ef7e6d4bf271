"""The supervisor's end of bind adoption (the child's is :mod:`reloadkit.child.adopt`).

A child's ``bind()`` to an address reloadkit holds takes the held socket. When the process
has the descriptor (the command itself, its forks) it needs nothing from here; a Python
program the command started without it, and every bind while reloadkit is learning the
addresses (no ``--bind``: the first generation binds them), asks over a private datagram
socket. The answer carries the descriptor (``SCM_RIGHTS``); a learned address is bound and
held by the supervisor from then on, exactly like one given with ``--bind``.

Only addresses reloadkit holds, or that a generation started while nothing was held binds, are
ever adopted: a program's other sockets (a port 0, a Unix socket of its own) bind as usual.
"""

from __future__ import annotations

import array
import errno
import os
import socket
import sys
from collections.abc import Sequence

from reloadkit.child.adopt import (
    ADDRESS_VARIABLE,
    HELD_VARIABLE,
    LEARN_VARIABLE,
    Address,
    conflicts,
    decode_request,
    format_held,
    normalize,
)
from reloadkit.net.binding import Listener, listen_tcp, other_tcp_listener
from reloadkit.net.datagram import PrivateDatagramSocket

__all__ = ["AdoptRequest", "AdoptService", "adopt_environment", "bind_learned", "held_address", "match"]

class AdoptRequest:
    """One child's question: which process asks (``pid``, None where the kernel cannot tell),
    for which address, and where the answer goes."""

    __slots__ = ("address", "pid", "reply_to")

    def __init__(self, pid: int | None, address: Address | None, reply_to: object) -> None:
        self.pid, self.address, self.reply_to = pid, address, reply_to


def held_address(listener: Listener) -> Address | None:
    """What a listener holds, as the child's bind would name it."""
    sock = listener.sock
    if sock.family == socket.AF_UNIX:
        return Address(socket.AF_UNIX, path=listener.unix_path) if listener.unix_path else None
    v6only = False
    if sock.family == socket.AF_INET6:
        v6only = bool(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
    return normalize(sock.family, sock.getsockname(), v6only)


def match(listeners: Sequence[Listener], wanted: Address) -> int | None:
    """The index of the held listener a bind to ``wanted`` takes: the same family, and an
    address the kernel would call in use."""
    for index, listener in enumerate(listeners):
        held = held_address(listener)
        if held is not None and held.family == wanted.family and conflicts(held, wanted):
            return index
    return None


def adopt_environment(service_address: str, listeners: Sequence[Listener], socks: Sequence[socket.socket],
                      *, learn: bool) -> dict[str, str]:
    """A generation's adoption variables: where to ask, and each held socket (at fd 3..) with
    the inode of the one this generation is given."""
    entries = []
    for index, (listener, sock) in enumerate(zip(listeners, socks, strict=False)):
        address = held_address(listener)
        if address is not None:
            entries.append((3 + index, os.fstat(sock.fileno()).st_ino, address))
    env = {ADDRESS_VARIABLE: service_address}
    if entries:
        env[HELD_VARIABLE] = format_held(entries)
    if learn:
        env[LEARN_VARIABLE] = "1"
    return env


def bind_learned(address: Address, name: str, backlog: int) -> Listener:
    """Bind and listen on a TCP address a child asked for, as ``--bind`` would have; raises
    OSError (``EADDRINUSE`` when another socket has it)."""
    if address.family not in (socket.AF_INET, socket.AF_INET6) or address.port == 0:
        raise OSError(errno.EINVAL, "only a TCP address with a port is learned")
    reuseport = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
    sockaddr = (address.host, address.port) if address.family == socket.AF_INET else (address.host, address.port, 0, 0)
    v6only = int(address.v6only) if address.family == socket.AF_INET6 else None
    sock = listen_tcp(address.family, sockaddr, backlog, reuseport=reuseport, v6only=v6only)
    if reuseport and other_tcp_listener(sock):
        sock.close()
        raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
    return Listener(name, sock, backlog=backlog, reuseport=reuseport)


class AdoptService(PrivateDatagramSocket):
    """The private datagram socket children ask on; non-blocking, for the selector loop."""

    def __init__(self) -> None:
        super().__init__("reloadkit-adopt", abstract_only=True)

    def receive(self) -> list[AdoptRequest]:
        """Drain the queued requests, without blocking."""
        return [AdoptRequest(pid, decode_request(data), sender) for pid, data, sender in self.receive_all(1024) if sender]

    def answer(self, request: AdoptRequest, sock: socket.socket | None) -> None:
        """The descriptor of ``sock``, or a refusal (the child then binds as usual)."""
        try:
            if sock is None:
                self.sock.sendto(b"NO", request.reply_to)  # type: ignore[call-overload]
            else:
                fds = array.array("i", [sock.fileno()])
                self.sock.sendmsg([b"OK"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)], 0, request.reply_to)  # type: ignore[arg-type]
        except OSError:
            pass  # the asking process is gone (or not waiting any more)

    def __enter__(self) -> AdoptService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
