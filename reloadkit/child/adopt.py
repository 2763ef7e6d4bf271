"""Adopting the server's own bind: a ``bind()`` to an address reloadkit holds takes the held socket.

A server started the way people start it (``python manage.py runserver``, ``uvicorn --port``)
binds its own port, so it cannot be given one. Installed by the hook (``_hook/sitecustomize.py``)
or by the warm parent in a generation, and only when the supervisor set ``RELOADKIT_BINDS_ASK``,
this patches ``socket.socket.bind``: a TCP or Unix stream socket bound to an address the
supervisor holds becomes that socket (``dup2`` of the held descriptor onto its own, so every
reference to it stays valid); its ``listen()`` then leaves the held backlog alone. Without
``--bind``, generation 0's binds ask the supervisor to bind and hold the address first.

While a generation stops, reloadkit takes over its keep-alive connections (net/kept.py) and
marks those it serves on whatever the server does (reads held, or a request waiting) with a
TCP user timeout no server sets (:data:`TAKEN_USER_TIMEOUT`; the connection is on loopback,
where it has no effect, and its own value comes back when the server lets go). A
``shutdown()`` of such a connection is skipped, so the server's close drops its own reference
and sends no FIN (hypercorn's ``write_eof()``, Twisted's orderly close, daphne cancelling a
request it read as it stops), and the next generation serves the connection on.

Held addresses reach the process in ``RELOADKIT_BINDS_HELD`` (one per line: fd, inode, family,
port, host or path); a process that does not have the descriptor (a Python program the child
started with ``subprocess``) asks the supervisor for it over a private datagram socket
(``RELOADKIT_BINDS_ASK``); the answer carries the descriptor (``SCM_RIGHTS``). Standard library
only; nothing here runs unless a bind asks, or a TCP socket is shut down (one ``getsockopt``).
"""

from __future__ import annotations

import _socket
import os
import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["TAKEN_USER_TIMEOUT", "Address", "conflicts", "install", "normalize", "parse_held", "request"]

ADDRESS_VARIABLE = "RELOADKIT_BINDS_ASK"
HELD_VARIABLE = "RELOADKIT_BINDS_HELD"
LEARN_VARIABLE = "RELOADKIT_BINDS_LEARN"
_TIMEOUT = 10.0
_STREAM_FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)
_V4_ANY = "0.0.0.0"
_V6_ANY = "::"
# The C methods, never a patched one (the module may be loaded twice in one process).
_real_bind = _socket.socket.bind
_real_listen = _socket.socket.listen
_real_shutdown = _socket.socket.shutdown
_real_getsockopt = _socket.socket.getsockopt
TAKEN_USER_TIMEOUT = 86_400_017  # TCP_USER_TIMEOUT (ms): reloadkit has taken the connection over
_INET = (socket.AF_INET, socket.AF_INET6)
_TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)  # Linux


class Address:
    """A normalized stream address: ``family`` with a numeric ``host`` and ``port``, or a Unix
    ``path``; ``v6only``: an IPv6 socket that takes no IPv4 (dual-stack is the kernel's default).

    A plain class: the child loads this module, and dataclasses cost an import.
    """

    __slots__ = ("family", "host", "path", "port", "v6only")

    def __init__(self, family: int, host: str = "", port: int = 0, path: str = "", v6only: bool = False) -> None:
        self.family, self.host, self.port, self.path, self.v6only = family, host, port, path, v6only

    def __repr__(self) -> str:
        return f"Address({self.family!r}, {self.host!r}, {self.port!r}, {self.path!r}, v6only={self.v6only!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Address) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[int, str, int, str, bool]:
        return (int(self.family), self.host, self.port, self.path, self.v6only)

    def display(self) -> str:
        if self.family == socket.AF_UNIX:
            return f"unix:{self.path}"
        if self.family == socket.AF_INET6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    def _ipv4(self) -> str | None:
        """The IPv4 address this one also covers: itself, an IPv4-mapped one, or (dual-stack
        ``::``) every IPv4 address."""
        if self.family == socket.AF_INET:
            return self.host
        if self.family == socket.AF_INET6 and not self.v6only:
            if self.host == _V6_ANY:
                return _V4_ANY
            if self.host.startswith("::ffff:") and "." in self.host:
                return self.host[7:]
        return None


def normalize(family: int, address: object, v6only: bool = False) -> Address | None:
    """``address`` as given to ``bind()``, numeric as the kernel sees it; None for what cannot
    be adopted (another family, an abstract or unnamed Unix address, a malformed one)."""
    if family == socket.AF_UNIX:
        if isinstance(address, bytes):
            try:
                address = os.fsdecode(address)
            except (UnicodeError, ValueError):
                return None
        if not isinstance(address, str) or not address or address.startswith("\0"):
            return None
        return Address(family, path=os.path.abspath(address))
    if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple) or len(address) < 2:
        return None
    host, port = address[0], address[1]
    if not isinstance(port, int) or not isinstance(host, str):
        return None
    numeric = _numeric(family, host)
    if numeric is None:
        return None
    return Address(family, numeric, port, v6only=v6only and family == socket.AF_INET6)


def _numeric(family: int, host: str) -> str | None:
    if host in ("", "<broadcast>"):
        return (_V4_ANY if family == socket.AF_INET else _V6_ANY) if host == "" else None
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, host.partition("%")[0]))
    except (OSError, ValueError):
        pass
    try:  # a name (localhost): resolved as bind() resolves it, to the first address
        infos = socket.getaddrinfo(host, None, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        if info[0] == family:
            return socket.inet_ntop(family, socket.inet_pton(family, str(info[4][0]).partition("%")[0]))
    return None


def conflicts(one: Address, other: Address) -> bool:
    """Whether the kernel would refuse ``other`` while ``one`` is bound (EADDRINUSE): the same
    port on the same address, or a wildcard, across IPv4 and dual-stack IPv6."""
    if one.family == socket.AF_UNIX or other.family == socket.AF_UNIX:
        return one.family == other.family and one.path == other.path
    if one.port != other.port or one.port == 0:
        return False
    if one.family == other.family == socket.AF_INET6:
        if one.host == other.host or _V6_ANY in (one.host, other.host):
            return True
    v4_one, v4_other = one._ipv4(), other._ipv4()
    if v4_one is None or v4_other is None:
        return False
    return v4_one == v4_other or _V4_ANY in (v4_one, v4_other)


def parse_held(text: str) -> list[tuple[int, int, Address]]:
    """``RELOADKIT_BINDS_HELD``: ``(fd, inode, address)`` per line ``FD INODE FAMILY PORT HOST``."""
    held = []
    for line in text.split("\n"):
        parts = line.split(" ", 4)
        if len(parts) != 5 or not all(part.isdigit() for part in parts[:4]):
            continue
        fd, inode, family, port = (int(part) for part in parts[:4])
        if family == socket.AF_UNIX:
            address = Address(family, path=parts[4])
        else:
            address = Address(family, parts[4], port)
        held.append((fd, inode, address))
    return held


def format_held(entries: list[tuple[int, int, Address]]) -> str:
    """The inverse of :func:`parse_held` (the supervisor writes it)."""
    lines = []
    for fd, inode, address in entries:
        where = address.path if address.family == socket.AF_UNIX else address.host
        if "\n" not in where:
            lines.append(f"{fd} {inode} {int(address.family)} {address.port} {where}")
    return "\n".join(lines)


def encode_request(address: Address) -> bytes:
    where = address.path if address.family == socket.AF_UNIX else address.host
    return f"ADOPT {int(address.family)} {address.port} {int(address.v6only)} {where}".encode()


def decode_request(data: bytes) -> Address | None:
    parts = data.decode("utf-8", "replace").split(" ", 4)
    if len(parts) != 5 or parts[0] != "ADOPT" or not all(part.isdigit() for part in parts[1:4]):
        return None
    family, port, v6only = int(parts[1]), int(parts[2]), parts[3] == "1"
    if family == socket.AF_UNIX:
        return Address(family, path=parts[4]) if parts[4] else None
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    return normalize(family, (parts[4], port), v6only)


def request(supervisor: str, address: Address, timeout: float = _TIMEOUT) -> int | None:
    """Ask the supervisor for a socket on ``address``: a descriptor (ours to close), or None
    when it holds none and will not (its reply says why on its own log)."""
    if supervisor.startswith("@"):
        supervisor = "\0" + supervisor[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            _real_bind(sock, "")  # an autobound abstract name for the answer
            sock.settimeout(timeout)
            sock.sendto(encode_request(address), supervisor)
            data, fds, _flags, _address = socket.recv_fds(sock, 512, 1)
        except OSError:
            return None
    if data.startswith(b"OK") and fds:
        for extra in fds[1:]:
            os.close(extra)
        return fds[0]
    for fd in fds:
        os.close(fd)
    return None


class _State:
    def __init__(self, environ: dict[str, str] | os._Environ[str]) -> None:
        self.supervisor = environ.get(ADDRESS_VARIABLE, "")
        self.held = parse_held(environ.get(HELD_VARIABLE, ""))
        self.learn = environ.get(LEARN_VARIABLE) == "1"
        self.adopted: dict[int, int] = {}  # fd -> inode of the held socket it became

    def descriptor_for(self, address: Address) -> tuple[int, bool] | None:
        """A descriptor of the held socket for ``address`` and whether it is ours to close."""
        for fd, inode, held in self.held:
            if held.family == address.family and conflicts(held, address):
                try:
                    if os.fstat(fd).st_ino == inode:
                        return fd, False
                except OSError:
                    pass
                break  # held, but this process does not have it: ask
        else:
            if address.family == socket.AF_UNIX or address.port == 0:
                return None
            # Learning, or another address on a held port (aiohttp binds 0.0.0.0 and :: both).
            if not self.learn and not any(held.port == address.port for _fd, _inode, held in self.held):
                return None
        asked = request(self.supervisor, address) if self.supervisor else None
        return (asked, True) if asked is not None else None


_state: _State | None = None


def _bind(self: socket.socket, address: Any, /) -> None:
    state = _state
    found = None
    if state is not None and self.type == socket.SOCK_STREAM and self.family in _STREAM_FAMILIES:
        v6only = False
        if self.family == socket.AF_INET6:
            try:
                v6only = bool(self.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
            except OSError:
                pass
        wanted = normalize(self.family, address, v6only)
        if wanted is not None and (wanted.family == socket.AF_UNIX or wanted.port != 0):
            found = state.descriptor_for(wanted)
    if found is None:
        _real_bind(self, address)
        return
    fd, owned = found
    assert state is not None
    try:
        timeout = self.gettimeout()
        os.dup2(fd, self.fileno(), inheritable=self.get_inheritable())
        self.settimeout(timeout)  # O_NONBLOCK is the open file's: as this socket had it
        state.adopted[self.fileno()] = os.fstat(fd).st_ino
        if self.family == socket.AF_UNIX:
            _relink(self, address)
    finally:
        if owned:
            os.close(fd)


def _relink(sock: socket.socket, address: Any) -> None:
    """asyncio (and others) remove a stale socket file before they bind: the held socket's path
    is gone. Its other name (the hidden one reloadkit bound it to, beside it) gives it back."""
    path = os.fsdecode(address) if isinstance(address, (bytes, str)) else ""
    if not path or os.path.lexists(path):
        return
    try:
        hidden = sock.getsockname()
        if isinstance(hidden, str) and hidden and hidden != path:
            os.link(hidden, path)
    except OSError:
        pass


def _listen(self: socket.socket, *args: int) -> None:
    state = _state
    if state is not None and state.adopted:
        inode = state.adopted.get(self.fileno())
        try:
            if inode is not None and os.fstat(self.fileno()).st_ino == inode:
                return  # listening already, with the supervisor's (larger) backlog
        except OSError:
            pass
    _real_listen(self, *args)


def _shutdown(self: socket.socket, how: int, /) -> None:
    if how != socket.SHUT_RD and self.family in _INET:
        try:
            if _real_getsockopt(self, socket.IPPROTO_TCP, _TCP_USER_TIMEOUT) == TAKEN_USER_TIMEOUT:
                return  # taken over: its close must not end the client's connection
        except OSError:
            pass
    _real_shutdown(self, how)


def install(environ: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """Patch ``socket.socket.bind``/``listen``/``shutdown`` when this process has addresses
    to adopt."""
    global _state
    env = os.environ if environ is None else environ
    if not env.get(ADDRESS_VARIABLE):
        return False
    _state = _State(env)
    if not _state.held and not _state.learn:
        _state = None
        return False
    socket.socket.bind = _bind  # type: ignore[method-assign,assignment]
    socket.socket.listen = _listen  # type: ignore[method-assign,assignment]
    socket.socket.shutdown = _shutdown  # type: ignore[method-assign,assignment]
    return True
