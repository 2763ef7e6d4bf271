"""A child's stderr passed through the supervisor, keeping its last lines for reports."""

from __future__ import annotations

import collections
import contextlib
import os
import sys

__all__ = ["StderrTee"]


class StderrTee:
    """In overlap mode the child's stderr passes through us, so a failed start can be shown."""

    def __init__(self, lines: int = 20) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self.tail: collections.deque[str] = collections.deque(maxlen=lines)
        self._partial = b""

    def pump(self) -> bool:
        """Copy what is there to our stderr; False at end of file."""
        try:
            data = os.read(self.read_fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        with contextlib.suppress(OSError):
            sys.stderr.buffer.write(data)
            sys.stderr.flush()
        text = self._partial + data
        *complete, self._partial = text.split(b"\n")
        self.tail.extend(line.decode(errors="replace") for line in complete)
        return True

    def close_write(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def close(self) -> None:
        self.close_write()
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1
