"""The child's side of the fd hand-off: :func:`sockets` and :func:`sockets_by_name`.

The supervisor (:mod:`reloadkit.net.binding`) binds and listens before the first child
exists; the child finds the sockets at fds 3.. through systemd's ``LISTEN_FDS`` protocol
(:mod:`reloadkit.child.protocol`). Standard library only: every reload imports this.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import MutableMapping

from reloadkit.child.protocol import CONTRACT_VARIABLES, FIRST_FD
from reloadkit.errors import BindError, NoSocketsError

__all__ = ["adopt_listening_socket", "sockets", "sockets_by_name"]


def adopt_listening_socket(fd: int, what: str) -> socket.socket:
    """A socket object for ``fd``, checked to be a listening stream socket, not inheritable.

    Also the supervisor's, for sockets handed to it (``fd://N``, systemd activation).
    """
    try:
        info = os.fstat(fd)
    except OSError:
        raise BindError(errno.EBADF, f"cannot adopt {what}: descriptor {fd} is not open") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise BindError(errno.ENOTSOCK, f"cannot adopt {what}: descriptor {fd} is not a socket")
    sock = socket.socket(fileno=fd)
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError:
        listening = 0
    if sock.type != socket.SOCK_STREAM or not listening:
        sock.detach()
        raise BindError(errno.EINVAL, f"cannot adopt {what}: descriptor {fd} is not a listening socket")
    sock.set_inheritable(False)
    return sock


_inherited: dict[str, socket.socket] | None = None


def _take_inherited(environ: MutableMapping[str, str]) -> dict[str, socket.socket]:
    count_text = environ.get("LISTEN_FDS")
    pid_text = environ.get("LISTEN_PID")
    if count_text is None:
        raise NoSocketsError(
            "no inherited sockets: LISTEN_FDS is not set (start under `reloadkit run --bind ...`)"
        )
    if pid_text is None or not pid_text.isdigit() or int(pid_text) != os.getpid():
        raise NoSocketsError(
            f"the inherited sockets are for process {pid_text}, not this one ({os.getpid()}):"
            " a wrapper that does not exec changed the pid"
        )
    if not count_text.isdigit() or int(count_text) < 1:
        raise NoSocketsError(f"no inherited sockets: LISTEN_FDS={count_text!r}")
    first = int(environ.get("LISTEN_FDS_FIRST_FD", FIRST_FD) or FIRST_FD)
    names = environ.get("LISTEN_FDNAMES", "").split(":")
    found: dict[str, socket.socket] = {}
    for index in range(int(count_text)):
        fd = first + index
        name = names[index] if index < len(names) and names[index] else f"fd{fd}"
        try:
            found[name] = adopt_listening_socket(fd, f"inherited fd {fd}")
        except BindError as exc:
            raise NoSocketsError(str(exc)) from None
    for variable in CONTRACT_VARIABLES:
        environ.pop(variable, None)
    return found


def sockets_by_name(environ: MutableMapping[str, str] | None = None) -> dict[str, socket.socket]:
    """The inherited listening sockets by their ``LISTEN_FDNAMES`` name, in fd order.

    The first call takes them (sets close-on-exec, removes the ``LISTEN_*`` and werkzeug
    variables so that the server's own subprocesses do not adopt them); later calls return
    the same objects.
    """
    global _inherited
    if _inherited is None:
        _inherited = _take_inherited(os.environ if environ is None else environ)
    return dict(_inherited)


def sockets(environ: MutableMapping[str, str] | None = None) -> list[socket.socket]:
    """The inherited listening sockets, in ``--bind`` order (see :func:`sockets_by_name`)."""
    return list(sockets_by_name(environ).values())
