"""The controlling terminal reloadkit may share with its child."""

from __future__ import annotations

import contextlib
import os

__all__ = ["Terminal"]


class Terminal:
    """The controlling terminal, when reloadkit runs in its foreground process group.

    Then the child shares our process group, so it can read the terminal (``input()``,
    pdb) and gets Ctrl+C from the terminal itself; its settings are restored after a child
    dies in the middle of, say, a debugger session.
    """

    def __init__(self) -> None:
        self.fd: int | None = None
        self.saved: list[object] | None = None
        for fd in (0, 1, 2):
            try:
                if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                    self.fd = fd
                    break
            except OSError:
                continue
        if self.fd is not None:
            import termios

            try:
                self.saved = termios.tcgetattr(self.fd)
            except termios.error:
                self.saved = None

    @property
    def foreground(self) -> bool:
        if self.fd is None:
            return False
        try:
            return os.tcgetpgrp(self.fd) == os.getpgrp()
        except OSError:
            return False

    def restore(self) -> None:
        if self.saved is None or not self.foreground:
            return
        import termios

        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)  # type: ignore[arg-type]
