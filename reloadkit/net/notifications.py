"""systemd's notify protocol, the supervisor's end: a private datagram socket.

On Linux the socket lives in the abstract namespace and the kernel tells us the sender's pid,
so only the current children's trees are heard. The child's side (what it sends) is
:mod:`reloadkit.child.notify`.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

from reloadkit.child.notify import MAX_DATAGRAM

__all__ = ["NotifyListener", "NotifyMessage", "parse_message"]

_HAS_CREDENTIALS = hasattr(socket, "SO_PASSCRED") and hasattr(socket, "SCM_CREDENTIALS")


class NotifyMessage:
    """One datagram: the sender's pid (``None`` where the platform cannot tell) and its lines."""

    __slots__ = ("fields", "pid")

    def __init__(self, pid: int | None, fields: tuple[tuple[str, str], ...]) -> None:
        self.pid = pid
        self.fields = fields

    def __repr__(self) -> str:
        return f"NotifyMessage(pid={self.pid!r}, fields={self.fields!r})"

    def get(self, key: str) -> str | None:
        for name, value in reversed(self.fields):
            if name == key:
                return value
        return None

    def values(self, key: str) -> list[str]:
        return [value for name, value in self.fields if name == key]


def parse_message(data: bytes) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` lines, as systemd's ``sd_notify`` sends them; other lines are ignored."""
    fields = []
    for line in data.decode("utf-8", errors="replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields.append((key, value))
    return tuple(fields)


class NotifyListener:
    """The supervisor's end: a non-blocking datagram socket for the selector loop."""

    def __init__(self) -> None:
        import secrets
        import tempfile

        self._directory: str | None = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if sys.platform.startswith("linux"):
                name = f"reloadkit-{os.getpid()}-{secrets.token_hex(8)}"
                self.sock.bind("\0" + name)
                self.address = "@" + name
            else:
                self._directory = tempfile.mkdtemp(prefix="reloadkit-")  # mode 0700
                path = os.path.join(self._directory, "notify")
                self.sock.bind(path)
                self.address = path
            if _HAS_CREDENTIALS:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self.sock.setblocking(False)
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self) -> list[NotifyMessage]:
        """Drain what is queued, without blocking."""
        messages = []
        ancillary = socket.CMSG_SPACE(struct.calcsize("3i")) if _HAS_CREDENTIALS else 0
        while True:
            try:
                data, cmsgs, _flags, _address = self.sock.recvmsg(MAX_DATAGRAM, ancillary)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            pid = None
            for level, kind, payload in cmsgs:
                if level == socket.SOL_SOCKET and _HAS_CREDENTIALS and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[: struct.calcsize("3i")])[0]
            messages.append(NotifyMessage(pid, parse_message(data)))
        return messages

    def close(self) -> None:
        self.sock.close()
        if self._directory is not None:
            import shutil

            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
