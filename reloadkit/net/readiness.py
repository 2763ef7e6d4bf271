"""Readiness without the server's help: has the child taken a connection off its socket?

Most servers never send ``READY=1``. What every server does once it serves is ``accept()``.
A :class:`Probe` puts one connection of reloadkit's own into the queue of the socket a
generation was given, half-closed at once (the server reads an end of file, not a byte of a
request, and closes it quietly), and asks the kernel whether the server end of that
connection has been accepted yet: an accepted socket has an inode (it became a file in the
server), a queued one has none. On Linux the kernel answers through ``sock_diag`` netlink
(``inet_diag`` for TCP, ``unix_diag``'s peer for Unix sockets); where that is missing the
probe cannot work and the caller falls back to ``READY=1`` or a timer.

Because the question is about *this* connection, the answer is right on a queue that
clients share too (the first generation, or a socket the address has just moved to): the
queue is first in, first out, so when the probe is taken, the server has reached its
accept loop.

:class:`Readiness` decides, per generation, from the three signals: accepting (a probe was
taken), ``READY=1``, and the ``--ready-after`` timer, which is used only when no probe can
work. A child that sends ``READY=1`` *and* can be probed is ready when both have happened:
gunicorn's arbiter notifies before its workers have imported the app, and an app that
notifies after warming up meant to be waited for.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reloadkit.net import sockdiag

__all__ = [
    "ACCEPTING",
    "ANSWERING",
    "NOTIFIED",
    "TIMER",
    "HttpProbe",
    "Probe",
    "Readiness",
    "diag_available",
    "open_http_probe",
    "open_probe",
]

ACCEPTING = "accepting"
ANSWERING = "answering"
NOTIFIED = "READY=1"
TIMER = "timer"

_NOCOOKIE = 0xFFFFFFFF
_UDIAG_SHOW_PEER = 0x04
_UDIAG_SHOW_ICONS = 0x08
_UNIX_DIAG_PEER = 2
_UNIX_DIAG_ICONS = 3
_CHECK_MIN = 0.001  # first checks right away: a warm start accepts within milliseconds
_CHECK_MAX = 0.005  # a switch then waits at most this long after the first accept()
_LINGER_FIRST = 0.01  # a probe left behind is looked at after this long, then less and less often
_LINGER_EVERY = 1.0
_LINGER_MAX = 30.0  # ... and closed after this long even if its server end never closed


def _unix_attributes(inode: int, show: int) -> dict[int, bytes] | None:
    """unix_diag's attributes of the socket with ``inode``; None when it is unknown."""
    request = struct.pack("=BBxxIIIII", socket.AF_UNIX, 0, 0xFFFFFFFF, inode, show, _NOCOOKIE, _NOCOOKIE)
    answer = sockdiag.ask(request)
    if answer is None:
        return None
    found: dict[int, bytes] = {}
    offset = 16  # unix_diag_msg
    while offset + 4 <= len(answer):
        length, kind = struct.unpack_from("=HH", answer, offset)
        if length < 4:
            break
        found[kind] = answer[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


def _unix_server_end_taken(client: socket.socket, listener_inode: int) -> bool | None:
    """Is the client's server end out of the listener's queue? The listener lists the
    inodes of its queued connections (``UNIX_DIAG_ICONS``); kernels that give a queued
    server end no inode list a 0, and the peer reads 0 until the accept."""
    try:
        mine = _unix_attributes(os.fstat(client.fileno()).st_ino, _UDIAG_SHOW_PEER)
        listener = _unix_attributes(listener_inode, _UDIAG_SHOW_ICONS)
    except OSError:
        return None
    if mine is None or listener is None:
        return None
    peer = struct.unpack("=I", mine[_UNIX_DIAG_PEER][:4])[0] if _UNIX_DIAG_PEER in mine else 0
    if peer == 0:  # not accepted yet, or accepted and closed already: its end of file says
        try:
            return client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, TimeoutError):
            return False
        except OSError:
            return True
    icons = listener.get(_UNIX_DIAG_ICONS, b"")
    return peer not in struct.unpack(f"={len(icons) // 4}I", icons[: len(icons) // 4 * 4])


def diag_available() -> bool:
    """Can the kernel be asked about a socket's other end (Linux with sock_diag)?"""
    return sys.platform.startswith("linux") and sockdiag.available()


class Probe:
    """One connection of ours in ``listener``'s queue, until the server takes it."""

    signal = ACCEPTING

    def __init__(self, client: socket.socket, listener: socket.socket) -> None:
        self.client = client
        client.setblocking(False)
        if client.family == socket.AF_UNIX:
            self._ask: Callable[[], bool | None] = functools.partial(
                _unix_server_end_taken, client, os.fstat(listener.fileno()).st_ino
            )
        else:
            self._ask = functools.partial(sockdiag.server_end_taken, client.family, client.getpeername()[:2], client.getsockname()[:2])
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)  # the server reads an end of file: nothing to log

    def taken(self) -> bool | None:
        """Has the server taken it from the queue? None: the kernel cannot tell us."""
        if self.client.fileno() < 0:
            return None
        return self._ask()

    def finished(self) -> bool:
        """Has the server end closed (an end of file or a reset, after whatever it answered)?
        Only then may the probe close: a naive server writes an answer to the end of file,
        and a write to a closed peer is a broken pipe and a traceback in the user's server."""
        if self.client.fileno() < 0:
            return True
        try:
            while self.client.recv(65536):
                pass  # what the server answered: read and dropped
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        return True

    def close(self) -> None:
        self.client.close()


_HTTP_RETRY = 0.1  # a refused or 5xx answer is asked again this long after its connection closed,
_HTTP_RETRY_MAX = 1.0  # ... twice as long each time up to this (each 500 may print a traceback)
_HTTP_WAIT_CLOSE = 1.0  # ... or this long after a 5xx answer whose server keeps the connection
_HTTP_KEEP = 1024  # bytes of an answer kept: its status line is all that matters


class HttpProbe:
    """``GET path`` on a generation's own socket, asked again until it answers below 500.

    Django under gunicorn and ``flask run`` accept before they import the app: a broken
    version accepts and answers 500 (or closes the connection). Asking over HTTP makes such
    a version never ready, so in ``--overlap`` the working one keeps serving until a fix.
    ``connect`` reaches this socket alone (``Succession.connect_to``: SO_REUSEPORT steering,
    a Unix socket's hidden name) and raises ``OSError`` where it cannot.
    """

    signal = ANSWERING

    def __init__(self, connect: Callable[[], socket.socket], path: str) -> None:
        self._connect = connect
        self.path = path
        self.client: socket.socket | None = None
        self.status: int | None = None  # of the current attempt
        self.answered = False  # below 500
        self._buffer = b""
        self._next_try = 0.0
        self._retry = _HTTP_RETRY
        self._give_up_at: float | None = None
        self._open()

    def _open(self) -> None:
        client = self._connect()
        try:
            if client.family == socket.AF_UNIX:
                host = "localhost"
            else:
                address, port = client.getpeername()[:2]
                host = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
            request = f"GET {self.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: reloadkit-ready\r\n"
            client.sendall(request.encode("latin-1") + b"Connection: close\r\n\r\n")
            client.setblocking(False)
        except OSError:
            client.close()
            raise
        self.client, self.status, self._buffer, self._give_up_at = client, None, b"", None

    def _read(self) -> bool:
        """Read what arrived; True at the end of the connection (an end of file or a reset)."""
        assert self.client is not None
        try:
            while chunk := self.client.recv(65536):
                if len(self._buffer) < _HTTP_KEEP:
                    self._buffer += chunk[: _HTTP_KEEP - len(self._buffer)]
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        return True

    def _parse_status(self) -> None:
        line, found, _ = self._buffer.partition(b"\r\n")
        if self.status is None and found:
            parts = line.split()
            ok = len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit()
            self.status = int(parts[1]) if ok else 500  # not HTTP: not ready either

    def taken(self) -> bool:
        """Has the generation answered below 500 (asking again after a failed answer)?"""
        if self.answered:
            return True
        now = time.monotonic()
        if self.client is None:
            if now < self._next_try:
                return False
            try:
                self._open()
            except OSError:
                self._next_try = now + self._retry
                self._retry = min(_HTTP_RETRY_MAX, self._retry * 2)
                return False
        ended = self._read()
        self._parse_status()
        if self.status is not None and self.status < 500:
            self.answered = True  # the rest of the answer is read and dropped as it lingers
            return True
        if self.status is not None and self._give_up_at is None:
            self._give_up_at = now + _HTTP_WAIT_CLOSE
        if ended or (self._give_up_at is not None and now >= self._give_up_at):
            self.close()
            self._next_try = now + self._retry
            self._retry = min(_HTTP_RETRY_MAX, self._retry * 2)
        return False

    def finished(self) -> bool:
        if self.client is None or self.client.fileno() < 0:
            return True
        if self._read():
            self.close()
            return True
        return False

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


@dataclass
class _Lingering:
    """A probe that is ours no longer to judge, open until its server end closes."""

    probe: Probe | HttpProbe
    until: float
    next_check: float
    every: float = _LINGER_FIRST


@dataclass
class _State:
    started: float
    probes: list[Probe | HttpProbe]
    timer: float | None  # seconds after the start; None: no timer (a probe can tell)
    notified: bool = False
    ready: str | None = None
    next_check: float = 0.0
    extend: float = 0.0
    checks: int = field(default=0)


class Readiness:
    """Per generation: is it ready, and by which signal (``accepting``, ``READY=1``, ``timer``)?

    Keys are whatever the caller uses for a generation (its pid). Pure decisions over the
    probes' answers; the caller passes the time in and calls :meth:`check` when
    :meth:`deadline` is due.
    """

    def __init__(self, ready_after: float, *, timer_beside_probes: bool = False) -> None:
        self.ready_after = ready_after
        self.timer_beside_probes = timer_beside_probes  # an explicit --ready-after: "at the latest"
        self._states: dict[int, _State] = {}
        self._lingering: list[_Lingering] = []

    def watch(self, key: int, started: float, probes: Sequence[Probe | HttpProbe]) -> None:
        """Follow a new generation; ``probes`` may be empty (then READY=1, else the timer)."""
        usable = [probe for probe in probes if probe.taken() is not None]
        self._linger([probe for probe in probes if probe not in usable], started)  # queued all the same
        timer = None if usable and not self.timer_beside_probes else self.ready_after
        self._states[key] = _State(started, usable, timer, next_check=started + _CHECK_MIN)

    def forget(self, key: int, now: float | None = None) -> None:
        """Stop following ``key``; its probes stay open until their server ends close (a
        probe still queued is accepted by the stopping child, or relayed to the next one)."""
        state = self._states.pop(key, None)
        if state is not None:
            self._linger(state.probes, time.monotonic() if now is None else now)
            state.probes = []

    def _linger(self, probes: Sequence[Probe | HttpProbe], now: float) -> None:
        self._lingering += [_Lingering(probe, now + _LINGER_MAX, now + _LINGER_FIRST) for probe in probes]

    def is_ready(self, key: int) -> bool:
        state = self._states.get(key)
        return state is not None and state.ready is not None

    def extend(self, key: int, until: float) -> None:
        """``EXTEND_TIMEOUT_USEC``: the timer waits at least until ``until`` after the start."""
        state = self._states.get(key)
        if state is not None:
            state.extend = max(state.extend, until)

    def notified(self, key: int, now: float) -> str | None:
        """``READY=1`` came: the signal that made it ready, or None (still waiting to accept)."""
        state = self._states.get(key)
        if state is None or state.ready is not None:
            return None
        state.notified = True
        if not state.probes:
            return self._ready(state, NOTIFIED, now)
        return None

    def deadline(self) -> float | None:
        """The next time :meth:`check` has something to do."""
        times = [lingering.next_check for lingering in self._lingering]
        for state in self._states.values():
            if state.ready is not None:
                continue
            if state.probes:
                times.append(state.next_check)
            if state.timer is not None and not (state.notified and not state.probes):
                times.append(state.started + max(state.timer, state.extend))
        return min(times) if times else None

    def check(self, now: float) -> list[tuple[int, str]]:
        """Generations that became ready by ``now``, each with its signal."""
        found: list[tuple[int, str]] = []
        self._check_lingering(now)
        for key, state in self._states.items():
            if state.ready is not None:
                continue
            if state.probes:
                if now >= state.next_check:
                    state.checks += 1
                    taken = [probe for probe in state.probes if probe.taken()]
                    if taken:
                        found.append((key, self._ready(state, taken[0].signal, now)))
                        continue
                    elapsed = now - state.started
                    state.next_check = now + min(_CHECK_MAX, max(_CHECK_MIN, elapsed / 50))
            waited_for = state.notified and not state.probes
            if state.timer is not None and not waited_for and now >= state.started + max(state.timer, state.extend):
                found.append((key, self._ready(state, TIMER, now)))
        return found

    def _check_lingering(self, now: float) -> None:
        """Close the probes whose server ends have closed (or that waited too long)."""
        keep: list[_Lingering] = []
        for lingering in self._lingering:
            if now < lingering.next_check:
                keep.append(lingering)
            elif lingering.probe.finished() or now >= lingering.until:
                lingering.probe.close()
            else:
                lingering.every = min(_LINGER_EVERY, lingering.every * 2)
                lingering.next_check = now + lingering.every
                keep.append(lingering)
        self._lingering = keep

    def _ready(self, state: _State, how: str, now: float) -> str:
        """Ready; its probes stay open until the server closes its ends (a server that
        writes an answer to a connection that sent nothing must not meet a closed peer:
        a broken pipe, and many servers print a traceback)."""
        state.ready = how
        self._linger(state.probes, now)
        state.probes = []
        return how

    def close(self) -> None:
        for state in self._states.values():
            for probe in state.probes:
                probe.close()
        self._states.clear()
        for lingering in self._lingering:
            lingering.probe.close()
        self._lingering.clear()


def open_probe(listener: socket.socket, connect: Callable[[], socket.socket]) -> Probe | None:
    """A probe of ``listener``, connected by ``connect``; None where none can work."""
    if not diag_available():
        return None
    try:
        client = connect()
    except OSError:
        return None
    try:
        return Probe(client, listener)
    except OSError:
        client.close()
        return None


def open_http_probe(connect: Callable[[], socket.socket], path: str) -> HttpProbe | None:
    """An HTTP probe through ``connect``; None where the socket cannot be reached alone."""
    try:
        return HttpProbe(connect, path)
    except OSError:
        return None
