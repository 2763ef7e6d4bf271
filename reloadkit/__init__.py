"""reloadkit: an auto-reloader that holds the server's sockets.

The supervisor binds every socket before the first child exists and hands them to each
generation by file descriptor (systemd's ``LISTEN_FDS`` protocol), so a reload never refuses
a connection. Child-side helpers find those sockets and talk back to the supervisor.
"""

from __future__ import annotations

__version__ = "0.1.0"

from reloadkit.child.notify import notify, notify_ready, trigger_reload
from reloadkit.child.sockets import sockets, sockets_by_name
from reloadkit.errors import BindError, BindSpecError, ConfigError, NoSocketsError, ReloadkitError, SpawnError

# Type checkers see the two entry points as imported (they take any name TYPE_CHECKING as
# true); at run time __getattr__ imports them on first use, and `typing` is not imported here:
# a child that only wants its sockets pays for neither.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from reloadkit.reloader import run_with_reloader
    from reloadkit.wsgi import run_simple

__all__ = [
    "BindError",
    "BindSpecError",
    "ConfigError",
    "NoSocketsError",
    "ReloadkitError",
    "SpawnError",
    "__version__",
    "is_child",
    "notify",
    "notify_ready",
    "run_simple",
    "run_with_reloader",
    "sockets",
    "sockets_by_name",
    "trigger_reload",
]


def is_child() -> bool:
    """True in a process that reloadkit started itself (not in its grandchildren)."""
    import os

    return os.environ.get("RELOADKIT_PID") == str(os.getpid())


def __getattr__(name: str) -> object:
    """``run_with_reloader`` and ``run_simple`` on first use: a child that only wants its
    sockets should not pay for importing the supervisor and the WSGI server on every reload."""
    if name == "run_simple":
        from reloadkit.wsgi import run_simple

        return run_simple
    if name == "run_with_reloader":
        from reloadkit.reloader import run_with_reloader

        return run_with_reloader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
