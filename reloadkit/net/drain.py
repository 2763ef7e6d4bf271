"""Stopping a child at a moment it serves no request, as a state the supervisor's loop drives.

A server that dies on SIGTERM (werkzeug's, waitress, ``http.server``) loses the requests it
has accepted. The child is frozen with SIGSTOP, so it cannot accept another connection, and
its open connections are looked at; while it serves requests it runs on for a moment and is
looked at again. Connections that stay open across looks while the child has *run* for
``settled`` seconds are long-lived (an idle keep-alive connection, a stream): they do not
hold the stop up, unless (TCP) they have not received a byte yet: a client that connected
and has yet to send its request. The signal is sent while the child is frozen, and SIGCONT lets it act on
it before any more of its own code runs. After the child has run ``limit`` seconds of
traffic it is sent anyway.

Between two looks the loop is free (the next generation starts meanwhile): :meth:`Drain.step`
does one look and says when the next is due.

Times count the child's running time, not wall time, and it runs between looks at least as
long as a look took (a look asks the kernel for the connections, and reads /proc),
and a child frozen most of the time would see a slow request taken for an idle one. Time a
thread of the child spent waiting for a CPU (the next generation starts beside it, on a
busy machine) is not running time either: Linux's schedstat says how long that was.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator

from reloadkit.net.sockdiag import TcpConnection, socket_fds, tcp_connections

__all__ = ["UNUSED", "Drain", "frozen", "responses_in_progress", "serving_connections", "wait_stopped"]

_STOP_WAIT = 0.05  # a thread in uninterruptible sleep stops when it leaves it
_UNSTOPPED_TRIES = 20  # looks put off for a child that is slow to stop, before one is taken anyway


UNUSED = ":unused"  # the end of the name of a connection that has not received a byte yet


def _held_tcp(pid: int, tcp_ports: set[int]) -> list[tuple[int, TcpConnection]]:
    """The established connections on ``tcp_ports`` whose sockets ``pid`` holds, with
    their descriptor numbers (sock_diag: no /proc/net/tcp, whose TIME_WAIT rows are slow)."""
    if not tcp_ports:
        return []
    held = socket_fds([pid])
    conns = tcp_connections(tcp_ports, info=True) or []
    return [(held[conn.inode][1], conn) for conn in conns if conn.inode in held]


def serving_connections(
    pid: int, tcp_ports: set[int], unix_paths: set[str], held: list[tuple[int, TcpConnection]] | None = None
) -> frozenset[str]:
    """The accepted connections on our sockets that ``pid`` holds open, each named so that
    the same connection has the same name on the next look (requests in flight, or idle
    keep-alive connections: a single look cannot tell them apart). A TCP connection that
    has received nothing yet ends in :data:`UNUSED`: its client is about to send a request
    (the name changes once it has). ``held``: :func:`_held_tcp`'s answer, if asked already."""
    found: set[str] = set()
    for fd, conn in _held_tcp(pid, tcp_ports) if held is None else held:
        unused = conn.queues is not None and conn.queues.received == 0
        found.add(f"{fd}:{conn.remote}" + (UNUSED if unused else ""))
    if unix_paths:
        found.update(_connected_unix_sockets(pid, unix_paths))
    return frozenset(found)


def responses_in_progress(pid: int, tcp_ports: set[int], held: list[tuple[int, TcpConnection]] | None = None) -> bool:
    """Does ``pid`` (frozen) seem to be between a request and the end of its response on one
    of its connections (:meth:`TcpQueues.at_request_boundary`: a silent stream passes)?"""
    return any(
        conn.queues is not None and conn.queues.received and not conn.queues.at_request_boundary()
        for _fd, conn in (_held_tcp(pid, tcp_ports) if held is None else held)
    )


def _connected_unix_sockets(pid: int, paths: set[str]) -> set[str]:
    """Accepted (connected) sockets on our Unix paths among ``pid``'s descriptors (Linux)."""
    connected: set[str] = set()
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as table:
            next(table)
            for line in table:  # Num RefCount Protocol Flags Type St Inode Path
                fields = line.split()
                if len(fields) >= 8 and fields[5] == "03" and fields[7] in paths:
                    connected.add(f"socket:[{fields[6]}]")
        found: set[str] = set()
        if not connected:
            return found
        for name in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{name}")
                if link in connected:
                    found.add(link)
        return found
    except OSError:
        return set()


def wait_stopped(pid: int, timeout: float = _STOP_WAIT) -> bool:
    """Wait until every thread of ``pid`` has stopped after SIGSTOP (Linux; True elsewhere).

    ``kill()`` returns before the target stops: a child running on another CPU can still
    accept a connection, and a look at its descriptors taken meanwhile misses it (it would
    then be signalled with that request in hand).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return True  # gone, or no /proc: nothing to wait for
        if all(_state(f"/proc/{pid}/task/{tid}/stat") in (b"T", b"t", b"Z", b"X", None) for tid in tasks):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.0002)


def _state(stat: str) -> bytes | None:
    """The state letter of a /proc stat file; None when it cannot be read."""
    try:
        with open(stat, "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


@contextlib.contextmanager
def frozen(pids: Iterable[int]) -> Iterator[set[int]]:
    """Stop each of ``pids`` (SIGSTOP) for the block, and yield those whose every thread did
    stop: a look at their sockets then cannot race with them. Those stopped already (the
    drain's own freeze) are left so; the others are continued on the way out."""
    wanted = set(pids)
    ours: list[int] = []
    try:
        for pid in wanted:
            if _state(f"/proc/{pid}/stat") in (b"T", b"t"):
                continue
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
                ours.append(pid)
        yield {pid for pid in wanted if wait_stopped(pid)}
    finally:
        for pid in ours:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _cpu_waits(pid: int) -> dict[str, int]:
    """Nanoseconds each thread of ``pid`` has waited on a run queue (Linux; else empty)."""
    waits: dict[str, int] = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return waits
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as handle:
                waits[tid] = int(handle.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return waits


def _longest_wait(before: dict[str, int], after: dict[str, int]) -> float:
    """The longest any thread waited for a CPU between two readings, in seconds."""
    return max((after[tid] - before.get(tid, after[tid]) for tid in after), default=0) / 1e9


class Drain:
    """Deliver ``number`` to ``pid`` when it serves no request on our addresses; one look a step."""

    def __init__(
        self,
        pid: int,
        number: int,
        tcp_ports: set[int],
        unix_paths: set[str],
        limit: float,
        settled: float = 0.25,
        before_signal: Callable[[], None] | None = None,
        boundaries: bool = False,
        hold: Callable[[list[tuple[int, TcpConnection]]], None] | None = None,
    ) -> None:
        self.pid = pid
        self.number = number
        self.tcp_ports = tcp_ports
        self.unix_paths = unix_paths
        self.limit = limit
        self.settled = settled
        self.before_signal = before_signal
        # Wait (within ``limit``) for a look where no response is under way either: the
        # connections are then taken over (kept.py), and a server that dies of the signal
        # (waitress) cuts none.
        self.boundaries = boundaries
        # Called (frozen) with the connections of each look after which it waits: the caller
        # keeps new requests from beginning on them (kept.py), so that the ones under way end.
        self.hold = hold
        self.started = time.monotonic()
        self.done = False
        self.next_at: float | None = self.started  # when the next look is due
        self._ran = 0.0  # how long the child has run between looks
        self._thawed: float | None = None
        self._waits: dict[str, int] = {}
        self._first_seen: dict[str, float] = {}  # connection -> `_ran` when first seen
        self._unstopped = 0  # looks put off in a row: the child had not stopped yet

    @property
    def waited(self) -> float:
        return time.monotonic() - self.started

    def step(self) -> bool:
        """One look; True once the signal has been sent (or the child is gone)."""
        if self.done:
            return True
        try:
            os.kill(self.pid, signal.SIGSTOP)
        except ProcessLookupError:
            return self._finish()
        try:
            if not wait_stopped(self.pid) and self._unstopped < _UNSTOPPED_TRIES:
                # A thread still runs: on a busy machine it can wait for a CPU inside a
                # system call, an accept() among them. A look now could miss the connection
                # it is taking, and the signal would find it in hand: look again shortly.
                self._unstopped += 1
                self.next_at = time.monotonic() + _STOP_WAIT
                return False
            self._unstopped = 0
            if self._thawed is not None:
                thawed_for = time.monotonic() - self._thawed
                self._ran += max(0.0, thawed_for - _longest_wait(self._waits, _cpu_waits(self.pid)))
            look_started = time.monotonic()
            held = _held_tcp(self.pid, self.tcp_ports)  # one question to the kernel a look
            busy = serving_connections(self.pid, self.tcp_ports, self.unix_paths, held)
            for name in busy:
                self._first_seen.setdefault(name, self._ran)
            # A connection whose request has not arrived is never taken for an idle one: a
            # graceful server (aiohttp, uvicorn) closes those on the signal, and its client,
            # slowed down on a busy machine between connect() and send(), loses the request.
            fresh = [name for name in busy if name.endswith(UNUSED) or self._ran - self._first_seen[name] < self.settled]
            if self._ran >= self.limit or (
                not fresh and not (self.boundaries and self.tcp_ports and responses_in_progress(self.pid, self.tcp_ports, held))
            ):
                self.signal()
                return True
            if self.hold is not None and self.boundaries:
                self.hold(held)
            run_for = max(0.002, time.monotonic() - look_started)
            self._waits = _cpu_waits(self.pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
        self._thawed = time.monotonic()
        self.next_at = self._thawed + run_for
        return False

    def signal(self) -> None:
        """Send the signal now, whatever is in flight (the caller freezes the child first if
        it can; a shutdown does not wait)."""
        if self.done:
            return
        if self.before_signal is not None:
            self.before_signal()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, self.number)
        self._finish()

    def _finish(self) -> bool:
        self.done = True
        self.next_at = None
        return True
