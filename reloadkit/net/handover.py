"""Handing a listening address from one generation's socket to the next.

Why: a graceful asyncio server (uvicorn, hypercorn, daphne, aiohttp) keeps accepting for a
moment after SIGTERM, then closes the connections it accepted but never read. When the
stopping generation and the next one share a socket, every connection that arrives in that
moment can land in the old one. So a generation that replaces a live one gets a listening
socket of its own on the same address, and the address moves to it in one step:

* TCP (Linux): the sockets form an ``SO_REUSEPORT`` group, and a one-instruction classic BPF
  program attached to the group says which member new connections go to. The kernel keeps
  the members in an array: a socket joins at the end, and when one leaves, the last one
  takes its slot. :class:`Succession` mirrors that array to know each member's index.
* Unix: the new socket is bound under a hidden name in the same directory and hard-linked
  over the path; a ``connect()`` resolves the path, so it reaches the new socket from then on.

Connections already queued on the old socket when its generation is told to stop are
accepted here and relayed to the new socket (:class:`Relay`), so none is dropped.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import selectors
import socket
import struct
import sys
from collections.abc import Callable, Iterable

from reloadkit.net.binding import Listener, bind_unix_hidden, is_ours, link_over, listen_tcp, remove_if_ours

__all__ = ["Handover", "Relay", "Succession", "set_interest", "steer", "steer_port", "take_queued"]

_SO_ATTACH_REUSEPORT_CBPF = 51
_BPF_RET_K = 0x06
_SKF_NET_OFF = 0xFFF00000  # -0x100000: loads relative to the IP header
_CONNECT_TIMEOUT = 1.0  # a local connect only waits when the accept queue is full
_CHUNK = 65536


def steer(member: socket.socket, index: int) -> None:
    """Send every new connection of ``member``'s reuseport group to the member at ``index``.

    The program is one instruction, ``return index``; the kernel hashes over the group
    when the index is out of range.
    """
    _attach(member, [(_BPF_RET_K, 0, 0, index)])


def _attach(member: socket.socket, instructions: list[tuple[int, int, int, int]]) -> None:
    code = b"".join(struct.pack("HBBI", *instruction) for instruction in instructions)
    buffer = ctypes.create_string_buffer(code)
    program = struct.pack("HP", len(instructions), ctypes.addressof(buffer))
    member.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_REUSEPORT_CBPF, program)


def steer_port(member: socket.socket, port: int, to: int, others: int) -> None:
    """Like :func:`steer` (every connection to the member at ``others``), except that a
    connection from source ``port`` goes to the member at ``to``: how a probe reaches a
    socket that receives nothing else.

    The program reads the TCP source port behind the IP header (IPv4: its length is in the
    header; IPv6: the fixed 40 bytes). No load can fail (the headers are always there), so
    the program never returns the 0 a failed load would.
    """
    net = _SKF_NET_OFF
    _attach(member, [
        (0x30, 0, 0, net),  # ldb [net]          version and header length
        (0x74, 0, 0, 4),  # rsh #4
        (0x15, 0, 6, 4),  # jeq #4 ? next : v6
        (0x30, 0, 0, net),  # ldb [net]
        (0x54, 0, 0, 0x0F),  # and #0xf
        (0x64, 0, 0, 2),  # lsh #2             IPv4 header length in bytes
        (0x07, 0, 0, 0),  # tax
        (0x48, 0, 0, net),  # ldh [x + net]      source port
        (0x05, 0, 0, 1),  # ja cmp
        (0x28, 0, 0, net + 40),  # v6: ldh [net + 40]
        (0x15, 0, 1, port),  # cmp: jeq #port ? to : others
        (_BPF_RET_K, 0, 0, to),
        (_BPF_RET_K, 0, 0, others),
    ])


def _tcp_sibling(model: socket.socket, backlog: int) -> socket.socket:
    """A new socket in ``model``'s reuseport group, with the same options."""
    v6only = None
    if model.family == socket.AF_INET6:
        v6only = model.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    return listen_tcp(model.family, model.getsockname(), backlog, reuseport=True, v6only=v6only)


def take_queued(sock: socket.socket) -> list[socket.socket]:
    """Accept whatever waits in ``sock``'s queue, without blocking.

    O_NONBLOCK belongs to the open file description, which the child shares: it is set
    only for these accepts and then put back as it was (an asyncio child needs it set; a
    blocking accept would hang it for good).
    """
    taken: list[socket.socket] = []
    fd = sock.fileno()
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        while True:
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # the socket was shut down meanwhile
            taken.append(conn)
    finally:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    return taken


class Succession:
    """The sockets one listening address has had: the current one, its prepared successor,
    and old ones that a stopping generation still holds.

    Only sockets reloadkit made itself can have successors: a TCP socket bound with
    ``SO_REUSEPORT`` on Linux, or a Unix socket bound under a hidden name whose path still
    holds our socket file.
    Adopted descriptors (``fd://N``, socket activation) are shared by every generation.
    """

    def __init__(self, listener: Listener, on_unix_file: Callable[[str, int], None] = lambda path, inode: None) -> None:
        self.listener = listener
        self.others: list[socket.socket] = []  # every socket of this address but the current one
        # TCP: the kernel's reuseport array, in its order
        self.members = [listener.sock] if listener.reuseport else []
        self.hidden: dict[socket.socket, tuple[str, int]] = {}  # Unix: the name each was bound to
        self._on_unix_file = on_unix_file
        if listener.unix_path is not None and listener.bound_path is not None and listener.unix_inode is not None:
            self.hidden[listener.sock] = (listener.bound_path, listener.unix_inode)

    @property
    def current(self) -> socket.socket:
        return self.listener.sock

    def _unix_path_is_ours(self) -> bool:
        return is_ours(self.listener.unix_path, self.listener.unix_inode)

    def prepare(self) -> socket.socket | None:
        """A new listening socket on the address, receiving nothing until :meth:`switch`;
        None when this address cannot have one (the generations then share the socket)."""
        listener = self.listener
        if listener.reuseport and sys.platform.startswith("linux"):
            steer(self.current, self.members.index(self.current))  # before it joins
            sock = _tcp_sibling(self.current, listener.backlog)
            self.members.append(sock)
        elif listener.bound_path is not None and self._unix_path_is_ours():
            assert listener.unix_path is not None
            sock, bound = bind_unix_hidden(listener.unix_path, listener.unix_mode, listener.backlog)
            inode = os.stat(bound).st_ino
            self.hidden[sock] = (bound, inode)
            self._on_unix_file(bound, inode)
        else:
            return None
        self.others.append(sock)
        return sock

    def switch(self, sock: socket.socket) -> bool:
        """Send new connections to ``sock`` (made by :meth:`prepare`); False if the address
        could not be moved (a Unix path somebody else has taken over meanwhile)."""
        if sock is self.current or sock not in self.others:
            return sock is self.current
        listener = self.listener
        if listener.unix_path is not None:
            if not self._unix_path_is_ours():
                return False
            bound, inode = self.hidden[sock]
            link_over(bound, listener.unix_path)
            listener.unix_inode, listener.bound_path = inode, bound
        else:
            steer(sock, self.members.index(sock))
        self.others.remove(sock)
        self.others.append(self.current)
        listener.sock = sock
        return True

    def take_queued(self, socks: Iterable[socket.socket]) -> list[socket.socket]:
        """Connections waiting in the queues of ``socks`` (a stopping generation's old
        sockets): nobody else should accept them. The current socket is left alone."""
        chosen = [sock for sock in socks if sock in self.others]
        return [conn for sock in chosen for conn in take_queued(sock)]

    def release(self, held: Iterable[socket.socket]) -> list[socket.socket]:
        """Close the old sockets no running child holds; returns the connections that were
        still queued on them, to be relayed to the current socket.

        A TCP socket leaves the reuseport group only when no other old socket of the group
        is held: between its leaving (the kernel moves the current socket into its slot) and
        the program's new index, the kernel hashes new connections over the group, and one
        could land on a stopping child that accepts it while it shuts down and closes it
        unanswered. Unheld sockets take nothing meanwhile, and what lands on them is relayed.
        """
        keep = set(held)
        leftovers: list[socket.socket] = []
        closing = [sock for sock in self.others if sock not in keep]
        if any(sock in self.members for sock in self.others if sock in keep):
            closing = [sock for sock in closing if sock not in self.members]
        for sock in closing:
            leftovers.extend(take_queued(sock))
            self._close(sock)
        return leftovers

    def _close(self, sock: socket.socket) -> None:
        self.others.remove(sock)
        if sock in self.members:
            # Leave the group now, whoever else still has the descriptor, so the mirror
            # stays exact; then point the program at the current socket's new index.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            index = self.members.index(sock)
            last = self.members.pop()
            if last is not sock:
                self.members[index] = last
            with contextlib.suppress(OSError):
                steer(self.current, self.members.index(self.current))
        bound = self.hidden.pop(sock, None)
        if bound is not None:
            remove_if_ours(*bound)
        sock.close()

    def close(self) -> None:
        """Close every socket but the current one (the listener closes that)."""
        for sock in list(self.others):
            self._close(sock)

    def connect_to(self, sock: socket.socket) -> socket.socket:
        """A connection that lands in ``sock``'s queue, whether new connections go there or
        not (a probe of the generation that holds it); blocking until it is queued."""
        listener = self.listener
        if sock is self.current:
            return self.connect()
        if sock in self.hidden:  # Unix: its own hidden name
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.settimeout(_CONNECT_TIMEOUT)
                upstream.connect(self.hidden[sock][0])
            except OSError:
                upstream.close()
                raise
            return upstream
        if sock not in self.members or not sys.platform.startswith("linux") or not listener.is_tcp:
            raise OSError(errno.EOPNOTSUPP, "no way to reach this socket alone")
        host, port = _client_address(self.current)
        upstream = socket.socket(self.current.family, socket.SOCK_STREAM)
        try:
            upstream.bind((host, 0))
            steer_port(self.current, upstream.getsockname()[1], self.members.index(sock), self.members.index(self.current))
            try:
                upstream.settimeout(_CONNECT_TIMEOUT)
                upstream.connect((host, port))
            finally:
                steer(self.current, self.members.index(self.current))
        except OSError:
            upstream.close()
            raise
        return upstream

    def connect(self) -> socket.socket:
        """A new connection to the address, as a client would make it (for a relay)."""
        listener = self.listener
        if listener.unix_path is not None:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = listener.unix_path
        else:
            upstream = socket.socket(self.current.family, socket.SOCK_STREAM)
            target = _client_address(self.current)
        try:
            upstream.settimeout(_CONNECT_TIMEOUT)
            upstream.connect(target)
        except OSError:
            upstream.close()
            raise
        return upstream


def _client_address(sock: socket.socket) -> tuple[str, int]:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if sock.family == socket.AF_INET else "::1"
    return host, port


def set_interest(selector: selectors.BaseSelector, end: socket.socket, events: int, callback: Callable[[], object]) -> None:
    """Have ``selector`` wait for ``events`` on ``end`` (0: for nothing), registering it with
    ``callback`` the first time."""
    key = selector.get_map().get(end)
    if events and key is None:
        selector.register(end, events, callback)
    elif events and key is not None and key.events != events:
        selector.modify(end, events, key.data)
    elif not events and key is not None:
        selector.unregister(end)


class Relay:
    """Carries one connection, accepted from an old socket, to the current one.

    Both ends are non-blocking and driven by the supervisor's selector; bytes read from
    one end wait in a buffer until the other end takes them, and reading stops meanwhile,
    so a slow reader slows the writer instead of filling memory. An end of file is passed
    on as a half-close.
    """

    def __init__(
        self, client: socket.socket, upstream: socket.socket, selector: selectors.BaseSelector,
        on_close: Callable[[Relay], None] = lambda relay: None, initial: bytes = b"",
    ) -> None:
        self.ends = (client, upstream)
        self.selector = selector
        self.on_close = on_close
        # to write to; ``initial``: what was read from the client before the relay began
        self.outgoing: dict[socket.socket, bytes] = {client: b"", upstream: initial}
        self.ended: dict[socket.socket, bool] = {client: False, upstream: False}  # read EOF
        self.closed = False
        for end in self.ends:
            end.setblocking(False)
            selector.register(end, selectors.EVENT_READ, lambda end=end: self._on_ready(end))
        self._on_ready(client)

    def _peer(self, end: socket.socket) -> socket.socket:
        return self.ends[1] if end is self.ends[0] else self.ends[0]

    def _on_ready(self, end: socket.socket) -> None:
        try:
            for side in self.ends:
                self._flush(side)
                self._read(side)
        except OSError:
            self.close()
            return
        if all(self.ended.values()) and not any(self.outgoing.values()):
            self.close()
            return
        self._update_interest()

    def _read(self, end: socket.socket) -> None:
        peer = self._peer(end)
        while not self.ended[end] and not self.outgoing[peer]:
            try:
                data = end.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                self.ended[end] = True
                with contextlib.suppress(OSError):
                    peer.shutdown(socket.SHUT_WR)
                return
            self.outgoing[peer] = data
            self._flush(peer)

    def _flush(self, end: socket.socket) -> None:
        while self.outgoing[end]:
            try:
                sent = end.send(self.outgoing[end])
            except (BlockingIOError, InterruptedError):
                return
            self.outgoing[end] = self.outgoing[end][sent:]

    def _update_interest(self) -> None:
        for end in self.ends:
            events = 0
            if not self.ended[end] and not self.outgoing[self._peer(end)]:
                events |= selectors.EVENT_READ
            if self.outgoing[end]:
                events |= selectors.EVENT_WRITE
            set_interest(self.selector, end, events, functools.partial(self._on_ready, end))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for end in self.ends:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(end)
            end.close()
        self.on_close(self)


class Handover:
    """Every listener's :class:`Succession`, the sockets each generation was given, and the
    relays: what the supervisor asks of the hand-over, keyed by a child's pid."""

    def __init__(
        self,
        listeners: Iterable[Listener],
        selector: selectors.BaseSelector,
        warn: Callable[[str], None],
        debug: Callable[[str], None],
        on_unix_file: Callable[[str, int], None] = lambda path, inode: None,
    ) -> None:
        self.successions = [Succession(listener, on_unix_file) for listener in listeners]
        self._on_unix_file = on_unix_file
        self.held: dict[int, list[socket.socket]] = {}  # child pid -> the sockets it was given
        self.relays: set[Relay] = set()
        self.selector = selector
        self.warn = warn
        self.debug = debug

    def add(self, listener: Listener, pid: int) -> Succession:
        """A listener learned while ``pid`` runs (it bound the address): ``pid`` holds it."""
        succession = Succession(listener, self._on_unix_file)
        self.successions.append(succession)
        self.held.setdefault(pid, []).append(listener.sock)
        return succession

    def sockets_for_new(self, *, beside: bool) -> list[socket.socket]:
        """One socket a listener for a new generation: beside a live one, a socket of its own
        (receiving nothing until :meth:`switch_to`), else the current one."""
        return [(self._prepare(succession) if beside else None) or succession.current for succession in self.successions]

    def give(self, pid: int, socks: list[socket.socket]) -> None:
        self.held[pid] = socks

    def on_the_address(self, pid: int) -> bool:
        """Does ``pid`` hold a socket new connections go to?"""
        held = self.held.get(pid, ())
        return any(succession.current in held for succession in self.successions)

    def own(self, pid: int) -> list[tuple[Succession, socket.socket]]:
        """The sockets of ``pid`` that no other generation holds."""
        others = {id(sock) for other, held in self.held.items() if other != pid for sock in held}
        return [
            (succession, sock)
            for succession, sock in zip(self.successions, self.held.get(pid, ()), strict=False)
            if id(sock) not in others
        ]

    def switch_to(self, pid: int) -> None:
        """New connections go to ``pid``'s sockets from now on."""
        for succession, sock in zip(self.successions, self.held.get(pid, ()), strict=False):
            self._switch(succession, sock)

    def move_away(self, pid: int) -> None:
        """Move each address ``pid`` (about to stop) serves to a new socket, for the next child."""
        held = self.held.get(pid, ())
        for succession in self.successions:
            if succession.current in held:
                sock = self._prepare(succession)
                if sock is not None:
                    self._switch(succession, sock)

    def relay_queued(self, pid: int) -> None:
        """While ``pid`` is frozen: what waits on its old sockets goes to the current ones."""
        held = self.held.get(pid, ())
        for succession in self.successions:
            for conn in succession.take_queued(held):
                self.relay(succession, conn)

    def release(self, live: Iterable[int]) -> None:
        """Forget the sockets of children that are gone; close the old sockets no live child
        holds, relaying what was still queued on them."""
        alive = set(live)
        for pid in [pid for pid in self.held if pid not in alive]:
            del self.held[pid]
        held = [sock for socks in self.held.values() for sock in socks]
        for succession in self.successions:
            for conn in succession.release(held):
                self.relay(succession, conn)

    def served_addresses(self) -> tuple[set[int], set[str]]:
        """Our ports, and the names our Unix sockets were bound to (an accepted connection
        carries its listener's bound name, hidden or not)."""
        ports: set[int] = set()
        paths: set[str] = set()
        for succession in self.successions:
            for sock in (succession.current, *succession.others):
                address = sock.getsockname()
                if succession.listener.is_tcp:
                    ports.add(address[1])
                elif isinstance(address, str) and address:
                    paths.add(address)
        return ports, paths

    def close(self) -> None:
        for relay in list(self.relays):
            relay.close()
        for succession in self.successions:
            succession.close()

    def _prepare(self, succession: Succession) -> socket.socket | None:
        try:
            return succession.prepare()
        except OSError as exc:
            self.warn(f"cannot open a new socket on {succession.listener.display()} ({exc.strerror or exc});"
                      " the next generation shares the current one")
            return None

    def _switch(self, succession: Succession, sock: socket.socket) -> None:
        try:
            if not succession.switch(sock):
                self.debug(f"{succession.listener.display()}: the path is no longer our socket; not moved")
        except OSError as exc:  # the new socket is closed once no child holds it
            self.warn(f"cannot move {succession.listener.display()} to a new socket ({exc.strerror or exc});"
                      " the generations share the current one")

    def relay(self, succession: Succession, conn: socket.socket, initial: bytes = b"",
              origin: str = "queued on the old socket of") -> None:
        """Carry ``conn`` (``initial``: what was read from it already) to the current socket."""
        try:
            upstream = succession.connect()
        except OSError as exc:
            conn.close()
            self.warn(f"dropped a connection {origin} {succession.listener.display()}: cannot reach it ({exc})")
            return
        self.debug(f"relaying a connection {origin} {succession.listener.display()}")
        self.relays.add(Relay(conn, upstream, self.selector, self.relays.discard, initial))
