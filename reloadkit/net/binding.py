"""The supervisor's side of the sockets: bind specs, binding and listening early, adopting
sockets handed to the supervisor itself, and the variables that tell a child where they are.

The supervisor parses ``--bind`` specs, binds and listens on every socket before the first
child exists, and keeps them for its whole life; the child finds them at fds 3.. through
systemd's ``LISTEN_FDS`` protocol (its side: :mod:`reloadkit.child.sockets`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager

from reloadkit.child.protocol import CONTRACT_VARIABLES, FIRST_FD
from reloadkit.child.sockets import adopt_listening_socket
from reloadkit.errors import BindError, BindSpecError
from reloadkit.net.sockdiag import LISTEN, tcp_connections

__all__ = [
    "CONTRACT_VARIABLES",
    "FIRST_FD",
    "BindSpec",
    "Listener",
    "adopt_activation",
    "bind_unix_hidden",
    "contract_environment",
    "default_backlog",
    "is_ours",
    "link_over",
    "listen_tcp",
    "open_listeners",
    "other_tcp_listener",
    "parse_bind",
    "parse_binds",
    "remove_if_ours",
]

_NAME_RE = re.compile(r"^([A-Za-z0-9_.\-]{1,64})=(.*)$", re.DOTALL)
_UNIX_PATH_MAX = 107 if sys.platform.startswith("linux") else 103


class BindSpec:
    """One parsed ``--bind`` spec; ``kind`` is ``tcp``, ``unix`` or ``fd``.
    """

    __slots__ = ("explicit_name", "fd", "host", "kind", "mode", "name", "path", "port", "text")

    def __init__(
        self,
        text: str,
        name: str,
        kind: str,
        host: str | None = None,
        port: int | None = None,
        path: str | None = None,
        mode: int | None = None,
        fd: int | None = None,
        explicit_name: bool = False,
    ) -> None:
        self.text, self.name, self.kind = text, name, kind
        self.host, self.port, self.path, self.mode, self.fd = host, port, path, mode, fd
        self.explicit_name = explicit_name

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, slot) for slot in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BindSpec) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{slot}={getattr(self, slot)!r}" for slot in self.__slots__)
        return f"BindSpec({fields})"

    def named(self, name: str) -> BindSpec:
        """The same spec under another name."""
        copy = BindSpec(self.text, name, self.kind)
        for slot in self.__slots__:
            if slot != "name":
                setattr(copy, slot, getattr(self, slot))
        return copy


def _parse_port(text: str, spec: str) -> int:
    if not text:
        raise BindSpecError(f"bad bind spec {spec!r}: missing port")
    if not text.isdigit():
        raise BindSpecError(f"bad bind spec {spec!r}: port {text!r} is not a number")
    port = int(text)
    if port > 65535:
        raise BindSpecError(f"bad bind spec {spec!r}: port {port} is out of range (0-65535)")
    return port


def _parse_unix(rest: str, spec: str) -> tuple[str, int | None]:
    path, _, options = rest.partition(",")
    mode: int | None = None
    if options:
        key, _, value = options.partition("=")
        if key != "mode" or not re.fullmatch(r"[0-7]{3,4}", value):
            raise BindSpecError(
                f"bad bind spec {spec!r}: the only unix option is mode=OCTAL (e.g. mode=660)"
            )
        mode = int(value, 8)
    if not path:
        raise BindSpecError(f"bad bind spec {spec!r}: missing socket path")
    path = os.path.abspath(path)
    if len(os.fsencode(path)) > _UNIX_PATH_MAX:
        raise BindSpecError(
            f"bad bind spec {spec!r}: socket path is longer than {_UNIX_PATH_MAX} bytes"
        )
    return path, mode


def parse_bind(spec: str) -> BindSpec:
    """Parse ``[NAME=]ADDRESS``; the default name is filled in by :func:`parse_binds`."""
    text = spec.strip()
    name = ""
    match = _NAME_RE.match(text)
    if match:
        name, text = match.group(1), match.group(2)
    if not text:
        raise BindSpecError(f"bad bind spec {spec!r}: empty address")
    fields = {"text": spec, "name": name, "explicit_name": bool(name)}
    if text.startswith("unix:"):
        path, mode = _parse_unix(text[5:], spec)
        return BindSpec(kind="unix", path=path, mode=mode, **fields)  # type: ignore[arg-type]
    if text.startswith("fd://"):
        number = text[5:]
        if not number.isdigit():
            raise BindSpecError(f"bad bind spec {spec!r}: fd://N needs a descriptor number")
        return BindSpec(kind="fd", fd=int(number), **fields)  # type: ignore[arg-type]
    if text.isdigit():
        return BindSpec(kind="tcp", host="127.0.0.1", port=_parse_port(text, spec), **fields)  # type: ignore[arg-type]
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise BindSpecError(f"bad bind spec {spec!r}: missing ']' after the IPv6 address")
        host, rest = text[1:close], text[close + 1 :]
        if not host:
            raise BindSpecError(f"bad bind spec {spec!r}: empty IPv6 address")
        if not rest.startswith(":"):
            raise BindSpecError(f"bad bind spec {spec!r}: expected ':PORT' after ']'")
        return BindSpec(kind="tcp", host=host, port=_parse_port(rest[1:], spec), **fields)  # type: ignore[arg-type]
    if ":" not in text:
        raise BindSpecError(
            f"bad bind spec {spec!r}: expected PORT, HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N"
        )
    host, _, port_text = text.rpartition(":")
    if ":" in host:
        raise BindSpecError(f"bad bind spec {spec!r}: write IPv6 addresses in brackets, [::1]:PORT")
    return BindSpec(
        kind="tcp", host=host or "127.0.0.1", port=_parse_port(port_text, spec), **fields  # type: ignore[arg-type]
    )


def parse_binds(specs: Sequence[str]) -> list[BindSpec]:
    """Parse specs in order and give each a unique name (``tcp``, ``tcp2``, ``unix``, ...)."""
    parsed = [parse_bind(spec) for spec in specs]
    taken = {spec.name for spec in parsed if spec.explicit_name}
    if len(taken) != sum(1 for spec in parsed if spec.explicit_name):
        raise BindSpecError("bind names must be unique")
    result: list[BindSpec] = []
    for spec in parsed:
        if not spec.explicit_name:
            counter = 1
            name = spec.kind
            while name in taken:
                counter += 1
                name = f"{spec.kind}{counter}"
            taken.add(name)
            spec = spec.named(name)
        result.append(spec)
    return result


def default_backlog() -> int:
    """The kernel's maximum accept queue: clients wait there while no child is running."""
    try:
        with open("/proc/sys/net/core/somaxconn", encoding="ascii") as handle:
            return max(int(handle.read().strip()), socket.SOMAXCONN)
    except (OSError, ValueError):
        return max(socket.SOMAXCONN, 1024)


class Listener:
    """A listening address the supervisor holds for its whole life.

    ``sock`` is the socket new connections reach now; on a hand-over it is replaced by a
    new one on the same address (see :mod:`reloadkit.net.handover`), which needs the rest:
    ``backlog``, ``reuseport`` (a TCP socket in a reuseport group of its own) and, for a Unix
    socket, the public ``unix_path``, the ``unix_inode`` of our file there, its
    ``unix_mode`` and ``bound_path``, the hidden name the socket was bound to.
    """

    def __init__(
        self,
        name: str,
        sock: socket.socket,
        unix_path: str | None = None,
        unix_inode: int | None = None,
        *,
        backlog: int = 0,
        reuseport: bool = False,
        unix_mode: int | None = None,
        bound_path: str | None = None,
    ) -> None:
        self.name = name
        self.sock = sock
        self.unix_path = unix_path
        self.unix_inode = unix_inode
        self.backlog = backlog
        self.reuseport = reuseport
        self.unix_mode = unix_mode
        self.bound_path = bound_path

    @property
    def is_tcp(self) -> bool:
        return self.sock.family in (socket.AF_INET, socket.AF_INET6)

    def display(self) -> str:
        """The address as a person wants to see it (a URL for TCP)."""
        if self.sock.family == socket.AF_INET:
            host, port = self.sock.getsockname()[:2]
            return f"http://{host}:{port}"
        if self.sock.family == socket.AF_INET6:
            host, port = self.sock.getsockname()[:2]
            return f"http://[{host}]:{port}"
        if self.sock.family == socket.AF_UNIX:
            address = self.unix_path or self.sock.getsockname()
            if isinstance(address, bytes):
                address = address.decode(errors="replace")
            return f"unix:{address}" if address else "unix:(unnamed)"
        return f"socket family {self.sock.family}"

    def close(self) -> None:
        """Close, and remove the Unix socket file's names only if they are still ours."""
        self.sock.close()
        for name in (self.unix_path, self.bound_path):
            remove_if_ours(name, self.unix_inode)
        self.unix_path = self.bound_path = None


def is_ours(name: str | None, inode: int | None) -> bool:
    """Whether ``name`` is still the socket file we made: anyone may have replaced it."""
    try:
        return name is not None and os.lstat(name).st_ino == inode
    except OSError:
        return False


def remove_if_ours(name: str | None, inode: int | None) -> None:
    if name is not None and is_ours(name, inode):
        with contextlib.suppress(OSError):
            os.unlink(name)


def _bind_error(what: str, exc: OSError) -> BindError:
    reasons = {
        errno.EADDRINUSE: "address already in use",
        errno.EADDRNOTAVAIL: "address not available on this machine",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }
    reason = reasons.get(exc.errno or 0) or exc.strerror or str(exc)
    return BindError(exc.errno or 0, f"cannot bind {what}: {reason}")


def _bind_tcp(spec: BindSpec, backlog: int) -> Listener:
    assert spec.host is not None and spec.port is not None
    what = f"{spec.host}:{spec.port}" if ":" not in spec.host else f"[{spec.host}]:{spec.port}"
    try:
        infos = socket.getaddrinfo(
            spec.host, spec.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise BindError(errno.EADDRNOTAVAIL, f"cannot bind {what}: unknown host ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    # On Linux the socket gets siblings on the same address, one a generation (handover.py).
    reuseport = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
    try:
        sock = listen_tcp(family, address, backlog, reuseport=reuseport)
    except OSError as exc:
        raise _bind_error(what, exc) from None
    if reuseport and other_tcp_listener(sock):
        sock.close()
        raise BindError(errno.EADDRINUSE, f"cannot bind {what}: address already in use")
    return Listener(spec.name, sock, backlog=backlog, reuseport=reuseport)


def listen_tcp(
    family: int, address: tuple[object, ...], backlog: int, *, reuseport: bool = False, v6only: int | None = None
) -> socket.socket:
    """A TCP socket bound to ``address`` and listening, with the options a held listener needs."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if v6only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
        # Accepted connections inherit TCP_NODELAY on Linux: a server that adopts the fd as
        # AF_UNIX (uvicorn --fd) never sets it itself, and Nagle's algorithm would add ~40 ms.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def other_tcp_listener(sock: socket.socket) -> bool:
    """Whether another socket listens on an overlapping address and port.

    ``SO_REUSEPORT`` lets a second socket of the same user (another reloadkit, a server run
    with ``--reuse-port``) bind the same address without an error; that must still be
    "address already in use", not two servers sharing connections.
    """
    host, port = sock.getsockname()[:2]
    listeners = tcp_connections([port], (LISTEN,))
    if listeners is not None:  # sock_diag: /proc/net/tcp lists every TIME_WAIT too, slow to read
        ours_inode = os.fstat(sock.fileno()).st_ino
        anywhere = {"0.0.0.0", "::"}
        return any(
            conn.family == sock.family and conn.inode != ours_inode
            and (conn.local[0] == host or conn.local[0] in anywhere or host in anywhere)
            for conn in listeners
        )
    ours = str(os.fstat(sock.fileno()).st_ino)
    wildcard = {"00000000", "0" * 32}
    mine = _proc_net_address(host, sock.family)
    table = "/proc/net/tcp6" if sock.family == socket.AF_INET6 else "/proc/net/tcp"
    try:
        with open(table, encoding="ascii") as handle:
            lines = handle.readlines()[1:]
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        if len(fields) < 10 or fields[3] != "0A" or fields[9] == ours:  # 0A: LISTEN
            continue
        address, _, port_hex = fields[1].rpartition(":")
        if int(port_hex, 16) == port and (address == mine or address in wildcard or mine in wildcard):
            return True
    return False


def _proc_net_address(host: str, family: int) -> str:
    """``host`` as /proc/net/tcp* prints it: each 32-bit word of the address in host order."""
    packed = socket.inet_pton(family, host)
    return "".join(f"{int.from_bytes(packed[i : i + 4], sys.byteorder):08X}" for i in range(0, len(packed), 4))


def _remove_stale_unix_socket(path: str) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise BindError(errno.EEXIST, f"cannot bind unix:{path}: the path exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: a stale file left by a dead process
    else:
        raise BindError(errno.EADDRINUSE, f"cannot bind unix:{path}: another process is listening on it")
    finally:
        probe.close()


_hidden_names = 0


def _listen_unix(name: str, mode: int | None, backlog: int) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o777 & ~mode) if mode is not None else None
    try:
        sock.bind(name)
    except OSError:
        sock.close()
        raise
    finally:
        if old_umask is not None:
            os.umask(old_umask)
    try:
        if mode is not None:
            os.chmod(name, mode)
        sock.listen(backlog)
    except OSError:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return sock


def bind_unix_hidden(path: str, mode: int | None, backlog: int) -> tuple[socket.socket, str]:
    """A Unix socket listening under a fresh hidden name in ``path``'s directory.

    :func:`link_over` then gives it the address in one step. The hidden name stays while
    the socket is open: servers take it for the socket's own path (``getsockname()``);
    Twisted chmods it when it adopts the socket and removes it when it stops.
    """
    global _hidden_names
    folder, base = os.path.split(path)
    _hidden_names += 1
    bound = os.path.join(folder, f".{base}.rk{os.getpid()}-{_hidden_names}")
    if len(os.fsencode(bound)) > _UNIX_PATH_MAX:
        bound = os.path.join(folder, f".rk{os.getpid()}-{_hidden_names}")
    if len(os.fsencode(bound)) > _UNIX_PATH_MAX:
        raise OSError(errno.ENAMETOOLONG, "no room for a hidden name beside the socket path")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(bound)
    return _listen_unix(bound, mode, backlog), bound


def link_over(bound: str, path: str) -> None:
    """Make ``path`` a second name of the socket file at ``bound``, atomically: a client
    connecting meanwhile reaches either the old socket or this one, never nothing."""
    staging = bound + ".new"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(staging)
    try:
        os.link(bound, staging)
    except OSError:
        os.rename(bound, path)  # a file system without hard links: the hidden name goes
        return
    try:
        os.rename(staging, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(staging)
        raise


def _bind_unix(spec: BindSpec, backlog: int) -> Listener:
    assert spec.path is not None
    path = spec.path
    _remove_stale_unix_socket(path)
    try:
        try:
            sock, bound = bind_unix_hidden(path, spec.mode, backlog)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            # No room for a hidden name: bound in place, shared by every generation.
            sock = _listen_unix(path, spec.mode, backlog)
            return Listener(spec.name, sock, unix_path=path, unix_inode=os.stat(path).st_ino, backlog=backlog)
        try:
            inode = os.stat(bound).st_ino
            link_over(bound, path)
        except OSError:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(bound)
            raise
    except OSError as exc:
        raise _bind_error(f"unix:{path}", exc) from None
    return Listener(
        spec.name, sock, unix_path=path, unix_inode=inode, backlog=backlog, unix_mode=spec.mode, bound_path=bound
    )



def _adopt_fd(fd: int, name: str, what: str) -> Listener:
    return Listener(name, adopt_listening_socket(fd, what))


def _open_one(spec: BindSpec, backlog: int) -> Listener:
    if spec.kind == "tcp":
        return _bind_tcp(spec, backlog)
    if spec.kind == "unix":
        return _bind_unix(spec, backlog)
    assert spec.fd is not None
    if spec.fd <= 2:
        raise BindError(errno.EINVAL, f"cannot adopt fd://{spec.fd}: that is a standard stream")
    return _adopt_fd(spec.fd, spec.name, f"fd://{spec.fd}")


@contextmanager
def open_listeners(specs: Sequence[BindSpec], backlog: int | None = None) -> Iterator[list[Listener]]:
    """Bind and listen on every spec, in order; everything opened is closed on any exit."""
    listeners: list[Listener] = []
    try:
        for spec in specs:
            listeners.append(_open_one(spec, backlog or default_backlog()))
        yield listeners
    finally:
        for listener in reversed(listeners):
            listener.close()


def adopt_activation(environ: MutableMapping[str, str]) -> list[Listener]:
    """Adopt sockets handed to *this* process by systemd or systemfd, and unset the variables.

    Only when ``LISTEN_PID`` names this process: stale variables inherited from a parent
    that was itself activated must not be trusted.
    """
    count_text = environ.get("LISTEN_FDS")
    pid_text = environ.get("LISTEN_PID")
    if not count_text or not pid_text:
        return []
    if not pid_text.isdigit() or int(pid_text) != os.getpid() or not count_text.isdigit():
        return []
    count = int(count_text)
    first = int(environ.get("LISTEN_FDS_FIRST_FD", FIRST_FD) or FIRST_FD)
    names = environ.get("LISTEN_FDNAMES", "").split(":")
    listeners = []
    for index in range(count):
        name = names[index] if index < len(names) and names[index] else f"activated{index + 1}"
        listeners.append(_adopt_fd(first + index, name, f"activated socket {first + index}"))
    for variable in CONTRACT_VARIABLES:
        environ.pop(variable, None)
    return listeners


def contract_environment(listeners: Sequence[Listener]) -> dict[str, str]:
    """The child's fd-contract variables, all but ``LISTEN_PID`` (known only after fork)."""
    if not listeners:
        return {}
    env = {
        "LISTEN_FDS": str(len(listeners)),
        "LISTEN_FDNAMES": ":".join(listener.name for listener in listeners),
        "LISTEN_FDS_FIRST_FD": str(FIRST_FD),
    }
    for index, listener in enumerate(listeners):
        if listener.is_tcp:
            env["WERKZEUG_SERVER_FD"] = str(FIRST_FD + index)
            env["WERKZEUG_RUN_MAIN"] = "true"
            break
    return env

