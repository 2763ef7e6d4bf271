"""The state machine's records: its rules, the facts it may ask for, and what it knows of
each generation, restart and stop (plain data; the decisions are in
:mod:`reloadkit.supervisor.machine`)."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Protocol

from reloadkit.config.settings import Config
from reloadkit.net.readiness import TIMER

__all__ = ["Facts", "Gen", "Restart", "Rules", "Stopping", "rules_for"]


@dataclass(frozen=True)
class Rules:
    """What the options say about generations (from :class:`~reloadkit.config.settings.Config`)."""

    reload: bool = True
    overlap: bool = False
    strict_order: bool = False
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 5.0
    drain: bool = False  # there are held sockets: move the address and drain before the signal
    debounce: float = 0.05
    cwd: str = "/"


class Facts(Protocol):
    """What only the world can tell the machine (read-only questions)."""

    def on_the_address(self, pid: int) -> bool:
        """Does ``pid`` hold a socket new connections go to?"""

    def changes_unread(self) -> bool:
        """Has the watcher changes the loop has not read yet (they belong to a due batch)?"""


# --- records ------------------------------------------------------------------------------


@dataclass
class Restart:
    """A restart under way: why, which files, and how it waits."""

    reason: str
    changed: set[str] = field(default_factory=set)
    after_older: bool = False  # start only once every older generation is gone
    again: int | None = None  # the generation started once more (a retry), not a new one
    cold: bool = False  # not from the warm parent


@dataclass
class Gen:
    """One generation of the child, as the machine knows it."""

    number: int
    pid: int = 0  # 0 until Spawned
    started: float = 0.0
    beside: int | None = None  # pid of the live generation it was started beside (overlap)
    changed: frozenset[str] = frozenset()  # the files whose change started it (a retry starts with them too)
    speaks_restart: bool = False  # started under a "status 3 = restart me" protocol (run_with_reloader, RUN_MAIN)
    warm: bool = False
    ready_at: float | None = None
    ready_how: str = ""  # accepting, READY=1 or timer
    stop_sent_at: float | None = None
    returncode: int | None = None
    while_stopping: Restart | None = None  # started while an older one stopped: why (for a retry)
    broken: str | None = None  # up, but its app cannot load: stopped, and the error page shown
    broken_at: float | None = None  # ... if it still runs then (one that exits is a crash as usual)

    @property
    def alive(self) -> bool:
        return self.returncode is None

    @property
    def served(self) -> bool:
        """Ready by a sign of its own (it accepted, or said READY=1), not by the timer alone."""
        return self.ready_at is not None and self.ready_how != TIMER


@dataclass
class Stopping:
    gen: Gen
    kill_at: float
    nudge_at: float | None = None  # when to send the stop signal after a terminal's Ctrl+C
    draining: bool = False  # waiting for no request in flight before the signal
    drain_at: float | None = None  # the next look of the drain


def rules_for(config: Config, *, drain: bool) -> Rules:
    """The machine's rules from the options; ``drain``: there are held sockets.

    Where nothing is held (``--no-adopt``, a server in another language, before the first
    generation's bind is learned), the server binds its own port: the next generation starts
    only once the old one has exited, or it would find the port taken (never two binders).
    """
    return Rules(
        reload=config.reload,
        overlap=config.overlap,
        strict_order=config.strict_order or (not drain and not config.overlap),
        stop_signal=config.stop_signal,
        stop_timeout=config.stop_timeout,
        drain=drain,
        debounce=config.debounce_ms / 1000.0,
        cwd=config.cwd,
    )
