"""Exceptions raised by the library; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

__all__ = [
    "BindError",
    "BindSpecError",
    "ConfigError",
    "EnvFileError",
    "NoSocketsError",
    "ReloadkitError",
    "SpawnError",
]


class ReloadkitError(Exception):
    """Base class: every error reloadkit raises on purpose has a one-line message."""


class ConfigError(ReloadkitError, ValueError):
    """An option value is not acceptable."""


class EnvFileError(ConfigError):
    """An ``--env-file`` cannot be read or has a line that is not in dotenv's format."""


class BindSpecError(ConfigError):
    """A ``--bind`` spec does not follow the grammar."""


class _SystemError(ReloadkitError, OSError):
    """An ``OSError`` with an errno whose message is one line without the ``[Errno N]``."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class BindError(_SystemError):
    """A socket could not be bound, listened on or adopted."""


class NoSocketsError(ReloadkitError, LookupError):
    """The child asked for inherited sockets that are not there (or not for this process)."""


class SpawnError(_SystemError):
    """The command could not be started."""
