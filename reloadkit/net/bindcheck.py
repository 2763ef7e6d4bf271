"""A server that does not use the held socket: it failed to bind the address, or listens elsewhere.

Bind adoption covers Python servers. A server in another language (node, a Go binary), or a
Python one with adoption off, binds its own port: on an address reloadkit holds it fails with
"address already in use", and reloadkit would only say "exited with status 1". And a server
told another port than the one held (``-b :8000`` with Datasette's default 8001) serves there,
while requests to the held address wait in silence. Both are seen from the child, never
guessed: the first in the last lines of its stderr (``EADDRINUSE`` / "address already in use"
naming a held port), the second in ``/proc`` (the tree's sockets in the ``LISTEN`` state whose
address is not held). Each gets one line saying what to do, with the flag for its server.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import sys
from collections.abc import Iterable, Sequence

from reloadkit.child.adopt import Address, conflicts
from reloadkit.net.sockdiag import LISTEN, tcp_connections
from reloadkit.net.wrappers import process_socket_inodes

__all__ = ["BindCheck", "bind_failure", "elsewhere_message", "listening_elsewhere", "server_flag", "tree_listeners"]

DOCS = "docs/servers.rst"
_IN_USE = re.compile(r"EADDRINUSE|address already in use|errno 98\b|address in use", re.IGNORECASE)
_PORT = re.compile(r"(?:port |:)(\d{1,5})(?!\d)")  # 127.0.0.1:8000, [::1]:8000, ('::', 8000) is not: see below
_TUPLE_PORT = re.compile(r"', (\d{1,5})[,)]")  # Python's ('127.0.0.1', 8000)
_LISTEN = "0A"

#: the program's name -> how it takes the held socket (docs/servers.rst has the details)
_FLAGS = {
    "uvicorn": "uvicorn --fd 3",
    "hypercorn": "hypercorn --bind fd://3",
    "daphne": "daphne --fd 3",
    "gunicorn": "gunicorn reads LISTEN_FDS itself (run it directly, not through a wrapper)",
    "node": "in node, server.listen({fd: 3})",
    "bun": "server.listen({fd: 3})",
    "deno": "Deno.listen on fd 3 (LISTEN_FDS)",
    "granian": "granian cannot take a socket: run it without -b",
}


def server_flag(command: Sequence[str]) -> str:
    """How the command's server takes the held socket, as one phrase."""
    for word in command[:3]:
        name = os.path.basename(word)
        for program, flag in _FLAGS.items():
            if name == program or name.startswith(program + "."):
                return flag
    return "make it use fd 3 (--fd 3, fd://3, or LISTEN_FDS, which systemd-aware servers read)"


def bind_failure(stderr: Iterable[str], held: Sequence[Address], command: Sequence[str]) -> str | None:
    """The one line for a command that failed to bind a held address, from its stderr's last
    lines; None when they do not say so. A line naming a port must name a held one."""
    ports = {address.port for address in held if address.family != socket.AF_UNIX}
    found: Address | None = None
    for line in stderr:
        if not _IN_USE.search(line):
            continue
        named = {int(number) for number in (*_PORT.findall(line), *_TUPLE_PORT.findall(line))}
        for address in held:
            if address.family == socket.AF_UNIX and address.path in line:
                found = address
            elif address.port in named & ports:
                found = address
        if found is None and not named and len(held) == 1:
            found = held[0]  # "Address already in use" naming no port: the one held address
        if found is not None:
            break
    if found is None:
        return None
    return (f"{shlex.join(command)} could not bind {found.display()}, which reloadkit holds: it binds its own"
            f" socket. Let it use the held one: {server_flag(command)}; or leave out -b (see {DOCS})")


def _parse_address(text: str, family: int) -> tuple[str, int]:
    """``0100007F:1F40`` (each 32-bit word in host order) -> ``("127.0.0.1", 8000)``."""
    hex_host, _, hex_port = text.partition(":")
    raw = bytes.fromhex(hex_host)
    packed = b"".join(int.from_bytes(raw[i:i + 4], "big").to_bytes(4, sys.byteorder) for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, packed), int(hex_port, 16)


def tree_listeners(pids: Iterable[int]) -> dict[int, Address]:
    """The listening TCP sockets of these processes (``/proc``), by inode."""
    inodes: set[int] = set()
    first = None
    for pid in pids:
        first = first or pid
        inodes |= process_socket_inodes(pid)
    found: dict[int, Address] = {}
    if first is None or not inodes:
        return found
    listeners = tcp_connections(None, (LISTEN,))
    if listeners is not None:  # sock_diag: /proc's table lists every TIME_WAIT too, slow to read
        return {conn.inode: Address(conn.family, *conn.local) for conn in listeners if conn.inode in inodes}
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            with open(f"/proc/{first}/net/{table}", encoding="ascii") as handle:
                lines = handle.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN or not fields[9].isdigit() or int(fields[9]) not in inodes:
                continue
            try:
                host, port = _parse_address(fields[1], family)
            except (ValueError, OSError):
                continue
            found[int(fields[9])] = Address(family, host, port)
    return found


def listening_elsewhere(pids: Iterable[int], held: Sequence[Address], held_inodes: Iterable[int]) -> list[Address]:
    """What the tree listens on that reloadkit does not hold (another port, most likely)."""
    mine = set(held_inodes)
    return [
        address for inode, address in tree_listeners(pids).items()
        if inode not in mine and not any(conflicts(address, known) for known in held)
    ]


def elsewhere_message(pid: int, elsewhere: Sequence[Address], held: Sequence[Address]) -> str:
    where = ", ".join(address.display() for address in elsewhere)
    ours = ", ".join(address.display() for address in held)
    return (f"pid {pid} listens on {where}, not on {ours}, which reloadkit holds: requests to {ours} wait for"
            f" nothing. Give the server the held address (or -b {elsewhere[0].display()}; see {DOCS})")


_LOOK_AFTER = (1.0, 2.0, 4.0, 8.0)  # seconds after a start: when a generation not ready yet is looked at


class BindCheck:
    """The supervisor's side: each failed exit is looked at, and so is a generation that is not
    ready a while after its start (no probe was taken on the held socket), a few times."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = tuple(command)
        self.said_elsewhere = False
        self._due: dict[int, list[float]] = {}  # pid -> when to look at it

    def exited(self, code: int, stderr: Sequence[str], held: Sequence[Address]) -> str | None:
        """The one line for a generation that failed because it could not bind a held address."""
        if code == 0 or code > 128 or not held:
            return None
        return bind_failure(stderr, held, self.command)

    def started(self, pid: int, now: float) -> None:
        if not self.said_elsewhere:
            self._due[pid] = [now + after for after in _LOOK_AFTER]

    def forget(self, pid: int) -> None:
        self._due.pop(pid, None)

    def deadline(self) -> float | None:
        return min((times[0] for times in self._due.values() if times), default=None)

    def due(self, now: float) -> list[int]:
        """The pids to look at now (each look is taken off its schedule)."""
        found = []
        for pid, times in list(self._due.items()):
            if times and times[0] <= now:
                while times and times[0] <= now:
                    times.pop(0)
                found.append(pid)
            if not times:
                del self._due[pid]
        return found

    def look(self, pid: int, tree: Iterable[int], held: Sequence[Address], inodes: Iterable[int]) -> str | None:
        """The one line (once per run) for a server listening elsewhere than the held address."""
        if self.said_elsewhere or not held:
            return None
        elsewhere = listening_elsewhere(tree, held, inodes)
        if not elsewhere:
            return None
        self.said_elsewhere = True
        self._due.clear()
        return elsewhere_message(pid, elsewhere, held)
