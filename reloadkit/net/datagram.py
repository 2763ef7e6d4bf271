"""A private datagram socket for the supervisor's channels (notify, bind adoption).

On Linux it lives in the abstract namespace and the kernel tells us each sender's pid
(``SO_PASSCRED``), so a channel hears only whom it was named to; elsewhere it is a path in a
private (0700) temporary directory, removed on close.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
import struct
import sys

__all__ = ["Datagram", "PrivateDatagramSocket"]

_HAS_CREDENTIALS = hasattr(socket, "SO_PASSCRED") and hasattr(socket, "SCM_CREDENTIALS")
_CREDENTIALS = struct.calcsize("3i")

#: One received datagram: the sender's pid (None where the kernel cannot tell), its bytes,
#: and the sender's address (empty for an unbound sender).
Datagram = tuple["int | None", bytes, object]


class PrivateDatagramSocket:
    """Non-blocking, for the selector loop; ``prefix`` names the channel in ``ss -x``."""

    def __init__(self, prefix: str, *, abstract_only: bool = False) -> None:
        self._directory: str | None = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if sys.platform.startswith("linux"):
                name = f"{prefix}-{os.getpid()}-{secrets.token_hex(8)}"
                self.sock.bind("\0" + name)
                self.address = "@" + name
            elif abstract_only:
                raise OSError(errno.EOPNOTSUPP, f"{prefix} needs an abstract socket (Linux)")
            else:
                import tempfile

                self._directory = tempfile.mkdtemp(prefix="reloadkit-")  # mode 0700
                path = os.path.join(self._directory, "channel")
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

    def receive_all(self, size: int) -> list[Datagram]:
        """Drain what is queued, without blocking."""
        found: list[Datagram] = []
        ancillary = socket.CMSG_SPACE(_CREDENTIALS) if _HAS_CREDENTIALS else 0
        while True:
            try:
                data, cmsgs, _flags, sender = self.sock.recvmsg(size, ancillary)
            except OSError:  # BlockingIOError and InterruptedError included: nothing more now
                break
            pid = None
            for level, kind, payload in cmsgs:
                if level == socket.SOL_SOCKET and _HAS_CREDENTIALS and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:_CREDENTIALS])[0]
            found.append((pid, data, sender))
        return found

    def close(self) -> None:
        self.sock.close()
        if self._directory is not None:
            import shutil

            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
