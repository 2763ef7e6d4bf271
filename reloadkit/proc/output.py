"""A child's stderr passed through the supervisor, keeping its last lines for reports.

Where reloadkit's own stderr is a terminal, the child's stderr is a pseudo-terminal whose
other end we copy to ours: the child still sees a terminal (colours, progress bars, Python
3.13's coloured tracebacks), and output post-processing is left to the real terminal (the
pty's ``OPOST`` is off), so the bytes that reach it are the child's own. Otherwise a pipe.
stdin and stdout are never touched: ``input()`` and pdb talk to the terminal directly.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import sys
from collections.abc import Callable

__all__ = ["StderrTee", "StderrTees", "TAIL_LINES"]

TAIL_LINES = 50
_CHUNK = 65536
_KEEP = 65536


def _open_pty(model_fd: int) -> tuple[int, int]:
    """A pty pair (master, slave) with output processing off and ``model_fd``'s window size."""
    import fcntl
    import termios

    master, slave = os.openpty()
    try:
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        with contextlib.suppress(OSError):
            size = fcntl.ioctl(model_fd, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
    except (OSError, termios.error):
        pass
    return master, slave


class StderrTee:
    """The child's stderr through us: copied to our stderr at once, its last lines kept."""

    def __init__(self, lines: int = TAIL_LINES, *, terminal: bool | None = None) -> None:
        if terminal is None:
            terminal = _stderr_is_a_terminal()
        if terminal:
            self.read_fd, self.write_fd = _open_pty(2)
        else:
            self.read_fd, self.write_fd = os.pipe()
        self.terminal = terminal
        os.set_blocking(self.read_fd, False)
        self.keep_lines = lines
        self.errored = False  # "Error" went by since the last look: a traceback may have ended
        self._recent = bytearray()  # the last bytes, split into lines only when asked: a chatty child costs a copy

    def _read(self) -> bytes | None:
        """What is there (b"" at the end), or None when nothing is there yet."""
        try:
            return os.read(self.read_fd, _CHUNK)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno == errno.EIO:  # a pty whose every writer has closed it
                return b""
            raise

    def pump(self, reads: int = 1) -> bool:
        """Copy what is there to our stderr, in at most ``reads`` reads; False at end of file."""
        for _ in range(reads):
            data = self._read()
            if data is None:
                return True
            if not data:
                return False
            self._copy(data)
        return True

    def drain(self) -> bool:
        """Copy what there is now (a child that just exited left it), at most a few reads
        (a grandchild may go on writing); False at end of file."""
        return self.pump(16)

    def _copy(self, data: bytes) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()  # anything reloadkit wrote itself goes first
            view = memoryview(data)
            while view:
                view = view[os.write(2, view):]
        self._recent += data
        if b"Error" in data:
            self.errored = True
        if len(self._recent) > 2 * _KEEP:  # trimmed now and then, not on every line
            del self._recent[:-_KEEP]

    def lines(self) -> list[str]:
        """The last lines (the unfinished one included), without carriage returns."""
        kept = self._recent[-_KEEP:]
        found = [line.rstrip("\r") for line in kept.decode(errors="replace").split("\n")]
        if len(kept) < len(self._recent):
            found = found[1:]  # the first one was cut
        if found and not found[-1]:
            found.pop()
        return found[-self.keep_lines:]

    def close_write(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def close(self) -> None:
        self.close_write()
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1


class StderrTees:
    """Every child's tee, pumped by the supervisor's selector.

    A tee outlives its child while grandchildren still write to it, and its tail stays
    readable until the child has been reaped and the tee reached its end.
    """

    def __init__(self, selector: selectors.BaseSelector, is_running: Callable[[int], bool],
                 on_error: Callable[[int, list[str]], None] | None = None) -> None:
        self.selector = selector
        self.is_running = is_running
        self.on_error = on_error  # told a running child's last lines when "Error" went by
        self.tees: dict[int, StderrTee] = {}

    def open(self) -> StderrTee:
        return StderrTee()

    def attach(self, pid: int, tee: StderrTee) -> None:
        """``tee`` is now ``pid``'s stderr (the child holds the writing end)."""
        tee.close_write()
        self.tees[pid] = tee
        self.selector.register(tee.read_fd, selectors.EVENT_READ, lambda: self.pump(pid))

    def pump(self, pid: int, *, drain: bool = False) -> None:
        tee = self.tees.get(pid)
        if tee is None or tee.read_fd < 0:
            return
        more = tee.drain() if drain else tee.pump()
        if tee.errored and not drain and self.on_error is not None and self.is_running(pid):
            tee.errored = False
            self.on_error(pid, tee.lines())
        if more:
            return
        self.selector.unregister(tee.read_fd)
        tee.close()
        if not self.is_running(pid):
            del self.tees[pid]

    def exited(self, pid: int) -> list[str]:
        """``pid`` has been reaped: copy what it left, and return its last lines."""
        tee = self.tees.get(pid)
        if tee is None:
            return []
        self.pump(pid, drain=True)
        if tee.read_fd < 0:
            self.tees.pop(pid, None)
        return tee.lines()

    def close(self) -> None:
        for tee in self.tees.values():
            if tee.read_fd >= 0:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(tee.read_fd)
            tee.close()
        self.tees.clear()


def _stderr_is_a_terminal() -> bool:
    try:
        return os.isatty(2)
    except OSError:
        return False
