"""The supervisor's configuration: the settings it runs with, their defaults and checks.

The options that set them are declared in :mod:`reloadkit.config.options`. Precedence: an
explicit argument beats a ``RELOADKIT_*`` environment variable, which beats
``[tool.reloadkit]`` in ``pyproject.toml`` (:mod:`reloadkit.config.pyproject`), which beats the
defaults (:func:`merge_settings`).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from reloadkit.errors import ConfigError
from reloadkit.net.binding import BindSpec, parse_binds
from reloadkit.watch.filters import glob_to_regex

__all__ = ["Config", "merge_settings", "parse_signal"]

DEFAULT_DEBOUNCE_MS = 50
DEFAULT_STOP_TIMEOUT = 5.0
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_READY_AFTER = 1.0


def parse_signal(text: str) -> signal.Signals:
    """``TERM``, ``SIGTERM``, ``sigint`` or ``15`` → a signal."""
    value = text.strip().upper()
    if value.isdigit():
        try:
            return signal.Signals(int(value))
        except ValueError:
            raise ConfigError(f"unknown signal {text!r}") from None
    if not value.startswith("SIG"):
        value = "SIG" + value
    try:
        return signal.Signals[value]
    except KeyError:
        raise ConfigError(f"unknown signal {text!r}") from None


@dataclass(frozen=True)
class Config:
    """Everything ``reloadkit run`` and ``run_with_reloader`` can be told."""

    command: tuple[str, ...]
    binds: tuple[BindSpec, ...] = ()
    backlog: int | None = None
    watch: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ext: tuple[str, ...] = ()
    extra_files: tuple[str, ...] = ()
    poll: float | None = None
    debounce_ms: int = DEFAULT_DEBOUNCE_MS
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    overlap: bool = False
    strict_order: bool = False  # the next generation starts only once the old one has exited
    ready_after: float | None = None
    ready_path: str | None = None  # readiness is an HTTP answer below 500 to GET ready_path
    env_files: tuple[str, ...] = ()
    through_wrapper: bool = False  # no LISTEN_PID; the hook claims the sockets (wrappers.py)
    imports: bool = False
    ignore_vcs: bool = True  # skip what git's ignore files and .ignore files ignore
    warm: bool = True
    checkpoint: bool = True  # with warm: a second parent holds the project's unedited modules (proc/checkpoint.py)
    adopt: bool = True  # a Python child's bind() to a held address takes the held socket (child/adopt.py)
    reload: bool = True
    error_page: bool = True
    livereload: bool = False
    livereload_port: int = 0
    livereload_static: tuple[str, ...] = ()
    verbosity: int = 0
    cwd: str = field(default_factory=os.getcwd)
    config_file: str | None = None  # the pyproject.toml whose [tool.reloadkit] was read

    def __post_init__(self) -> None:
        if not self.command or not self.command[0]:
            raise ConfigError("no command given: put it after --, e.g. reloadkit run -- python serve.py")
        if self.backlog is not None and self.backlog < 1:
            raise ConfigError("--backlog must be at least 1")
        if self.poll is not None and self.poll <= 0:
            raise ConfigError("--poll interval must be greater than 0")
        if self.debounce_ms < 0:
            raise ConfigError("--debounce must not be negative")
        if self.stop_timeout < 0:
            raise ConfigError("--stop-timeout must not be negative")
        if self.ready_after is not None and self.ready_after < 0:
            raise ConfigError("--ready-after must not be negative")
        if self.ready_path is not None and (not self.ready_path.startswith("/") or any(c.isspace() for c in self.ready_path)):
            raise ConfigError(f"--ready-path {self.ready_path!r} is not a path: it starts with / and has no spaces")
        for pattern in self.livereload_static:
            glob_to_regex(pattern)
        if not 0 <= self.livereload_port <= 65535:
            raise ConfigError(f"--livereload-port {self.livereload_port} is not a port (0 to 65535)")
        if self.strict_order and self.overlap:  # strict order wins: one generation at a time
            object.__setattr__(self, "overlap", False)

    @property
    def watch_roots(self) -> tuple[str, ...]:
        """Where to watch: the given paths; by default the current directory, except when the
        child reports its imports (then exactly those files, plus any given paths)."""
        if self.watch:
            return tuple(os.path.abspath(os.path.join(self.cwd, path)) for path in self.watch)
        return () if self.imports else (self.cwd,)

    @property
    def effective_ready_after(self) -> float:
        """Timer readiness for children that never send ``READY=1``."""
        return DEFAULT_READY_AFTER if self.ready_after is None else self.ready_after

    def with_binds(self, specs: Sequence[str]) -> Config:
        return replace(self, binds=tuple(parse_binds(specs)))


def merge_settings(
    *,
    file: Mapping[str, object],
    environment: Mapping[str, object],
    command_line: Mapping[str, object],
) -> dict[str, object]:
    """One :class:`Config`'s keyword arguments from its sources, strongest last.

    The command line beats ``RELOADKIT_*`` variables, which beat ``[tool.reloadkit]``, which
    beats the defaults (what no source sets keeps the dataclass default). Each source holds
    only what it sets, so a value is never overridden by a default.
    """
    return {**file, **environment, **command_line}
