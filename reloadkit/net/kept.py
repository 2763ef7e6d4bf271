"""Keep-alive takeover, the supervisor side: connections taken from a stopping generation
(takeover.py) served by the next ones, through a connection of the supervisor's own.

A kept connection is the client's socket plus, while a request is carried, an *upstream*
connection to the held address, which the current generation accepts. Its upstream is made
when the client sends bytes (those already queued on the socket first), so a kept connection
that is idle costs nothing but its descriptor.

At the next reload the upstream is the stopping generation's connection like any other, but
it is not duplicated: the kept connection is parked on that generation instead
(:class:`~reloadkit.net.takeover.Parking` decides the same way). When the generation lets go
of the upstream (it closes an idle keep-alive connection), or exits, the upstream is dropped
and the next request from the client makes a new one to the next generation: the relay never
grows a hop. Bytes forwarded upstream and never answered when it closed (a request racing
with the close, which the server did not read) are sent again on the new upstream. If the
generation was killed, the end of the upstream is passed on to the client, as without a
takeover.

A kept connection with no upstream that stays silent for ``idle_timeout`` seconds is closed,
as a server closes an idle keep-alive connection: this also ends, after that delay, a client
that was reading a response delimited by the end of the connection when it was taken.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from reloadkit.net.drain import frozen
from reloadkit.net.handover import Succession, set_interest
from reloadkit.net.sockdiag import TcpConnection, tcp_queues
from reloadkit.net.takeover import (
    CLOSE,
    CUT,
    RELEASE,
    TCP_CLOSE_WAIT,
    TCP_ESTABLISHED,
    Ends,
    Mark,
    Parking,
    connections_on,
    guard_shutdown,
    hold_reads,
    mark,
    peek,
    read_unanswered,
    refused,
    replay,
    resume_reads,
    socket_fds,
    still_receiving,
    take_fd,
    takeover_unavailable,
    tcp_state,
    unguard_shutdown,
    unread,
    usable,
)

__all__ = ["KeepAlive", "Kept"]

_CHUNK = 65536
_LOOK_EVERY = 0.005  # how often a stopping generation's descriptors are looked at
_IDLE_TIMEOUT = 5.0
_RESEND_LIMIT = 1 << 20  # unanswered bytes remembered to send again on a new upstream
_HOLD_FOR = 0.5  # how long a stopping server is kept from reading the next request


def _threads(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


class Kept:
    """One taken-over client connection, served through upstream connections made on demand."""

    def __init__(self, client: socket.socket, connect: Callable[[], socket.socket], selector: selectors.BaseSelector,
                 on_close: Callable[[Kept], None], idle_timeout: float = _IDLE_TIMEOUT, resend: bytes = b"") -> None:
        self.client = client
        self.connect = connect
        self.selector = selector
        self.on_close = on_close
        self.idle_timeout = idle_timeout
        self.upstream: socket.socket | None = None
        self.to_client = b""
        self.to_upstream = b""
        self.unanswered = b""  # sent upstream since its last byte came back
        self.client_ended = False
        self.upstream_ended = False
        self.parked = False  # its upstream's generation is stopping: wait for the decision
        self.release_pending = False  # the decision came before the upstream's end
        self.hold_until: float | None = None  # until then, the client's next request waits here
        self.idle_since: float | None = time.monotonic()
        self.closed = False
        client.setblocking(False)
        if resend:  # a request its server read and never answered: first in line upstream
            self.to_upstream = resend
            self._connect()
        self._update()
        self._on_ready()

    # --- what the takeover asks -----------------------------------------------------------

    def upstream_address(self) -> tuple[str, int] | None:
        """The supervisor's end of the upstream, as the generation sees its client."""
        if self.upstream is None or self.upstream.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        try:
            host, port = self.upstream.getsockname()[:2]
        except OSError:
            return None
        return host, port

    def park(self, hold_until: float | None = None) -> None:
        """Its upstream's generation is about to be told to stop. ``hold_until``: the client's
        next request waits here for the decision (or until then), rather than reach a server
        that may read it and close unanswered; a request already under way goes on up."""
        self.parked = True
        self.hold_until = hold_until

    def _holding(self) -> bool:
        """Is the client's next request held back (not the rest of one under way)?"""
        return self.hold_until is not None and not self.unanswered

    def unhold(self, now: float) -> None:
        """The generation has not let go of the upstream in time: it serves what waits."""
        if self.hold_until is not None and now >= self.hold_until:
            self.hold_until = None
            self._on_ready()

    def decided(self, decision: str) -> None:
        """The upstream's generation let go of it or exited (RELEASE), died of the stop signal
        (CUT: served on only if a request sent up had no answer begun), or was killed."""
        self.parked = False
        self.hold_until = None
        if decision == CUT:
            decision = RELEASE if self.unanswered else CLOSE
        if decision == RELEASE:
            if self.upstream_ended:
                self._detach()
            else:
                self.release_pending = True
        elif self.upstream_ended:
            self._pass_end_on()
        self._after()

    def expire(self, now: float) -> None:
        deadline = self.deadline()  # the same sum: ``now - since >= timeout`` can miss it by a rounding
        if deadline is not None and now >= deadline:
            self.close()

    def deadline(self) -> float | None:
        return None if self.idle_since is None else self.idle_since + self.idle_timeout

    # --- the relay --------------------------------------------------------------------------

    def _on_ready(self) -> None:
        try:
            self._flush_both()
            self._read_client()
            self._read_upstream()
            self._flush_both()
        except OSError:
            self.close()
            return
        self._after()

    def _after(self) -> None:
        if self.closed:
            return
        if self.client_ended and (self.upstream is None or self.upstream_ended) and not self.to_client:
            self.close()
            return
        self._update()

    def _flush_both(self) -> None:
        while self.to_client:
            try:
                sent = self.client.send(self.to_client)
            except (BlockingIOError, InterruptedError):
                break
            self.to_client = self.to_client[sent:]
        while self.upstream is not None and self.to_upstream and not self.upstream_ended and not self._holding():
            try:
                sent = self.upstream.send(self.to_upstream)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._upstream_end()
                break
            if len(self.unanswered) < _RESEND_LIMIT:
                self.unanswered += self.to_upstream[:sent]
            self.to_upstream = self.to_upstream[sent:]

    def _read_client(self) -> None:
        while not self.client_ended and not self.to_upstream:
            try:
                data = self.client.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                self.client_ended = True
                if self.upstream is not None and not self.upstream_ended:
                    with contextlib.suppress(OSError):
                        self.upstream.shutdown(socket.SHUT_WR)
                return
            self.to_upstream = data
            if self.upstream is None:
                self._connect()
            self._flush_both()

    def _connect(self) -> None:
        self.upstream = self.connect()  # an OSError closes the connection: nobody can serve it
        self.upstream.setblocking(False)
        self.upstream_ended = False
        self.unanswered = b""
        self.idle_since = None

    def _read_upstream(self) -> None:
        while self.upstream is not None and not self.upstream_ended and not self.to_client:
            try:
                data = self.upstream.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._upstream_end()
                return
            self.unanswered = b""
            self.to_client = data
            self._flush_both()

    def _upstream_end(self) -> None:
        self.upstream_ended = True
        if self.parked:
            return  # its generation is stopping: kept or ended, once its fate is known
        if self.release_pending:
            self._detach()
        else:
            self._pass_end_on()

    def _pass_end_on(self) -> None:
        """As a plain relay: the client sees the end of the server's side."""
        with contextlib.suppress(OSError):
            self.client.shutdown(socket.SHUT_WR)
        self.client_ended = True  # nothing more is carried upstream
        if self.upstream is not None and not self.to_client:
            self.close()

    def _detach(self) -> None:
        """The upstream's generation let go of it: the next bytes go to a new one."""
        self.release_pending = False
        resend, self.unanswered = self.unanswered, b""
        if self.upstream is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self.upstream)
            self.upstream.close()
        self.upstream = None
        self.upstream_ended = False
        self.idle_since = time.monotonic()
        self.to_upstream = resend + self.to_upstream
        if self.to_upstream:
            try:
                self._connect()
                self._flush_both()
            except OSError:
                self.close()

    def _update(self) -> None:
        if self.closed:
            return
        wants = {self.client: (0 if self.client_ended or self.to_upstream else selectors.EVENT_READ)
                 | (selectors.EVENT_WRITE if self.to_client else 0)}
        if self.upstream is not None:
            wants[self.upstream] = (0 if self.upstream_ended or self.to_client else selectors.EVENT_READ) \
                | (selectors.EVENT_WRITE if self.to_upstream and not self.upstream_ended and not self._holding() else 0)
        for end, events in wants.items():
            set_interest(self.selector, end, events, self._on_ready)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for end in (self.client, self.upstream):
            if end is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(end)
                end.close()
        self.on_close(self)


class _Prehold(NamedTuple):
    """A connection whose reads the drain holds while its generation ends its responses."""

    pid: int
    sock: socket.socket  # the duplicate that holds them
    #: (received, sent) when held mid-request, to tell an upload still arriving; None at a request boundary
    counters: tuple[int, int] | None


class KeepAlive:
    """Every connection taken from a stopping generation: parked while it holds them,
    kept (served through the next generations) once it lets go of them."""

    def __init__(self, successions: list[Succession], selector: selectors.BaseSelector,
                 debug: Callable[[str], None], idle_timeout: float = _IDLE_TIMEOUT) -> None:
        self.successions = successions
        self.selector = selector
        self.debug = debug
        self.idle_timeout = idle_timeout
        self.parking = Parking()
        self.taken: dict[int, tuple[socket.socket, Succession]] = {}  # inode -> duplicate
        self.marks: dict[int, Mark | None] = {}  # inode -> its counters when taken
        self.held: dict[int, tuple[float, Ends | None]] = {}  # inode -> its reads held (hold_reads) until
        self.guarded: dict[int, int] = {}  # inode -> its user timeout before guard_shutdown
        self.upstreams: dict[int, Kept] = {}  # the generation's end of a kept upstream -> it
        self.preheld: dict[int, _Prehold] = {}  # inode -> its reads held while its generation drains
        self.receiving: dict[int, int] = {}  # inode -> pid: held mid-request, still arriving: not again
        self.trees: dict[int, set[int]] = {}
        self.kept: set[Kept] = set()
        self.next_look: float | None = None
        self.enabled = True
        self.available = takeover_unavailable() is None
        self._said: set[str] = set()

    def _say_once(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            self.debug(message)

    def _tcp_ports(self) -> dict[int, Succession]:
        ports: dict[int, Succession] = {}
        for succession in self.successions:
            if succession.listener.is_tcp:
                for sock in (succession.current, *succession.others):
                    with contextlib.suppress(OSError):
                        ports[sock.getsockname()[1]] = succession
        return ports

    def take(self, pid: int, tree: Iterable[int]) -> None:
        """Before ``pid`` is told to stop (frozen): take every connection it holds on our
        TCP addresses, and park the kept connections whose upstream it serves."""
        if not self.enabled:
            self._let_go(pid)
            return
        reason = takeover_unavailable()
        if reason is not None:
            self._say_once(f"keep-alive takeover: not available ({reason}); kept-alive connections close with their generation")
            return
        ports = self._tcp_ports()
        conns = connections_on(set(ports), set())
        pids = set(tree) | {pid}
        held = socket_fds(pids)
        ours = {address: kept for kept in self.kept if (address := kept.upstream_address()) is not None}
        parked: list[int] = []
        boundary: list[int] = []
        mid_response = 0
        pidfds: dict[int, int] = {}
        threads: dict[int, int | None] = {}
        hold_until = time.monotonic() + _HOLD_FOR
        owners = {owner for inode, (owner, _fd) in held.items() if inode in conns}
        # Frozen, so that none of them reads a connection between the look and its hold: the
        # drain froze the generation's first process only, and gunicorn's workers are others.
        with frozen(owners) as still:
            try:
                for inode, (owner, fd) in held.items():
                    if inode not in conns or inode in self.taken or inode in self.upstreams:
                        continue
                    ends = conns[inode]
                    at_boundary = ends is not None and (queues := tcp_queues(*ends)) is not None and queues.at_request_boundary()
                    if at_boundary:
                        boundary.append(inode)
                    kept = ours.get(ends[2]) if ends is not None else None
                    if kept is not None:
                        kept.park(hold_until)
                        self.upstreams[inode] = kept
                        parked.append(inode)
                        continue
                    preheld = self.preheld.pop(inode, None)
                    try:
                        if preheld is not None:
                            sock = preheld.sock
                        else:
                            if owner not in pidfds:
                                pidfds[owner] = os.pidfd_open(owner)
                            sock = take_fd(pidfds[owner], fd)
                    except OSError as exc:
                        if refused(exc):
                            self._say_once(f"keep-alive takeover: not permitted here ({exc.strerror or exc});"
                                           " kept-alive connections close with their generation")
                            break
                        continue
                    succession = ports.get(sock.getsockname()[1])
                    if succession is None:
                        sock.close()
                        continue
                    self.taken[inode] = (sock, succession)
                    self.marks[inode] = mark(sock)
                    if preheld is not None or (inode not in self.receiving and owner in still and hold_reads(
                            sock, one_thread=threads.setdefault(owner, _threads(owner)) == 1)):
                        self.held[inode] = (hold_until, ends)
                    if ends is not None and not at_boundary:
                        mid_response += 1
                    since = self.marks[inode]
                    if (inode in self.held or (since is not None and since.waiting)) and (
                            previous := guard_shutdown(sock)) is not None:
                        self.guarded[inode] = previous  # served on whatever the server does with it
                    parked.append(inode)
            finally:
                for pidfd in pidfds.values():
                    os.close(pidfd)
                self._let_go(pid)  # held while it drained, and no longer its connections
        if parked:
            self.parking.park(pid, parked, boundary)
            self.trees[pid] = pids
            self.next_look = time.monotonic()
            self.debug(f"keep-alive takeover: {len(parked)} connection(s) of pid {pid} wait for it to let go"
                       f" ({mid_response} between a request and its answer)")

    def hold_idle(self, pid: int, conns: Iterable[tuple[int, TcpConnection]]) -> None:
        """While the drain waits for ``pid`` (frozen) to end the responses it has under way:
        hold the reads of its connections (those :func:`hold_reads` can hold), so that no new
        request begins on them and the drain finds a moment with no response under way. Under
        steady traffic on every connection there is none otherwise, and the signal would find
        requests read and unanswered, which daphne drops as its reactor stops. A request sent
        meanwhile waits in the kernel, for the next generation; :meth:`take` keeps the hold.
        ``conns``: the drain's look, (descriptor, connection) pairs."""
        if not self.enabled or not self.available:
            return
        ours = {address for kept in self.kept if (address := kept.upstream_address()) is not None}
        pidfd: int | None = None
        try:
            for fd, conn in conns:
                if (preheld := self.preheld.get(conn.inode)) is not None:
                    now = None if conn.queues is None else (conn.queues.received, conn.queues.sent or 0)
                    if still_receiving(preheld.counters, now, peek(preheld.sock)):
                        self.receiving[conn.inode] = pid  # an upload: its server reads the rest
                        self._let_go_of(conn.inode)
                        self.debug(f"keep-alive takeover: {conn.inode}: a request still arriving; its reads are not held")
                    continue
                if conn.inode in self.receiving or conn.inode in self.taken or conn.remote in ours:
                    continue  # a kept connection's upstream: the relay holds its requests itself
                if pidfd is None:
                    pidfd = os.pidfd_open(pid)
                sock = take_fd(pidfd, fd)
                if hold_reads(sock):
                    queues = conn.queues  # the look's counters: the same frozen moment, no second read
                    self.preheld[conn.inode] = _Prehold(pid, sock, (
                        None if queues is None or queues.sent is None or queues.at_request_boundary()
                        else (queues.received, queues.sent)))
                else:
                    sock.close()
        except OSError:
            return  # gone, or not permitted: take() says so once
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _let_go(self, pid: int | None = None) -> None:
        """Give back the reads held while ``pid`` (None: any) drained and drop the duplicates."""
        for inode, preheld in list(self.preheld.items()):
            if pid is None or preheld.pid == pid:
                self._let_go_of(inode)
        for inode, owner in list(self.receiving.items()):
            if pid is None or owner == pid:
                del self.receiving[inode]

    def _let_go_of(self, inode: int) -> None:
        sock = self.preheld.pop(inode).sock
        resume_reads(sock)
        sock.close()

    def deadline(self) -> float | None:
        due = [at for kept in self.kept if (at := kept.deadline()) is not None]
        if self.parking and self.next_look is not None:
            due.append(self.next_look)  # also when held reads and held requests are due: only parked ones are
        return min(due, default=None)

    def tick(self, now: float, alive: Callable[[int], bool]) -> None:
        if self.parking and self.next_look is not None and now >= self.next_look:
            for pid in self.parking.pids():
                if alive(pid):
                    still = set(socket_fds(self.trees.get(pid, {pid})))
                    self._perform(self.parking.look(pid, still))
            self.next_look = time.monotonic() + _LOOK_EVERY if self.parking else None
        for inode, (until, ends) in list(self.held.items()):
            if now >= until and (ends is None or (queues := tcp_queues(*ends)) is None or queues.at_request_boundary()):
                self._resume(inode)  # idle on it, and not letting go: it may serve it on
        for kept in list(self.upstreams.values()):
            kept.unhold(now)
        for kept in list(self.kept):
            kept.expire(now)

    def _resume(self, inode: int) -> None:
        if self.held.pop(inode, None) is not None and inode in self.taken:
            resume_reads(self.taken[inode][0])

    def _unguard(self, inode: int) -> None:
        previous = self.guarded.pop(inode, None)
        if previous is not None and inode in self.taken:
            unguard_shutdown(self.taken[inode][0], previous)

    def exited(self, pid: int, kind: str) -> None:
        self._let_go(pid)  # ended while it drained: its clients see the end of file now
        self._perform(self.parking.exited(pid, kind))
        self.trees.pop(pid, None)

    def _perform(self, decisions: list[tuple[int, str]]) -> None:
        if decisions:
            self.debug(f"keep-alive takeover: {', '.join(f'{inode}:{decision}' for inode, decision in decisions)}")
        for inode, decision in decisions:
            kept = self.upstreams.pop(inode, None)
            if kept is not None:
                kept.decided(decision)
                continue
            self._resume(inode)
            self._unguard(inode)
            taken = self.taken.pop(inode, None)
            since = self.marks.pop(inode, None)
            if taken is None:
                continue
            sock, succession = taken
            state = tcp_state(sock)
            resend = b""
            if decision == RELEASE and read_unanswered(sock, since):
                resend = replay(sock, since)
                if not resend:
                    self.debug(f"keep-alive takeover: closing {inode}: its server read a request it did not answer")
                    sock.close()
                    continue
                self.debug(f"keep-alive takeover: {inode}: its server read a request it did not answer; it goes to the next generation")
            if decision == CLOSE or not usable(state, bool(resend) or unread(sock), decision):
                self.debug(f"keep-alive takeover: closing {inode}: state {state}, unread {unread(sock)}")
                if decision != CLOSE and state not in (0, None, TCP_ESTABLISHED, TCP_CLOSE_WAIT):
                    self._say_once("keep-alive takeover: the server shut a connection down (shutdown());"
                                   " such connections close with their generation")
                sock.close()
                continue
            try:
                self.kept.add(Kept(sock, succession.connect, self.selector, self.kept.discard, self.idle_timeout, resend))
            except OSError:
                sock.close()

    def close(self) -> None:
        self._let_go()
        for inode in list(self.held):
            self._resume(inode)  # a generation may outlive us: it reads its connections again
        for inode in list(self.guarded):
            self._unguard(inode)
        for sock, _succession in self.taken.values():
            sock.close()
        self.taken.clear()
        self.marks.clear()
        for kept in list(self.kept):
            kept.close()
