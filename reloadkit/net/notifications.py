"""systemd's notify protocol, the supervisor's end: a private datagram socket.

The socket is a :class:`~reloadkit.net.datagram.PrivateDatagramSocket`: on Linux the kernel
tells us each sender's pid, so only the current children's trees are heard. The child's side (what it sends) is
:mod:`reloadkit.child.notify`.
"""

from __future__ import annotations

from reloadkit.child.notify import MAX_DATAGRAM
from reloadkit.net.datagram import PrivateDatagramSocket

__all__ = ["NotifyListener", "NotifyMessage", "parse_message"]

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


class NotifyListener(PrivateDatagramSocket):
    """The supervisor's end: a non-blocking datagram socket for the selector loop."""

    def __init__(self) -> None:
        super().__init__("reloadkit")

    def receive(self) -> list[NotifyMessage]:
        """Drain what is queued, without blocking."""
        return [NotifyMessage(pid, parse_message(data)) for pid, data, _sender in self.receive_all(MAX_DATAGRAM)]

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
