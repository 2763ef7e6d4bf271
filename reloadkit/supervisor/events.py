"""The supervisor's vocabulary: the events the machine is fed and the actions it returns.

Plain frozen dataclasses, no behaviour: see :mod:`reloadkit.supervisor.machine` for who sends
which and what each one means to the loop.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Action", "AppBroken", "Begin", "Changed", "DrainNow", "Drained", "Event", "Exited", "Fail", "Finish", "KillTree", "Log",
    "LookAhead",
    "PagesDown", "PagesReady", "Ready", "RestartAsked", "RestoreTerminal", "Shutdown", "Signal", "SpawnFailed",
    "Spawned", "Start", "StepDrain", "Stop", "SwitchTo", "Tick", "WarmFailed",
]


# --- events -------------------------------------------------------------------------------


class Event:
    """Something that happened; the machine's only input (with the clock)."""


@dataclass(frozen=True)
class Begin(Event):
    """The supervisor is set up: start generation 0."""


@dataclass(frozen=True)
class Changed(Event):
    """Watched files changed (after the browser took its static files)."""

    paths: frozenset[str]
    writing: frozenset[str] = frozenset()  # files still open for writing somewhere


@dataclass(frozen=True)
class RestartAsked(Event):
    """Restart now: SIGHUP, or the child asked (``RELOAD=1``)."""

    reason: str


@dataclass(frozen=True)
class Spawned(Event):
    """The :class:`Start` action made a process."""

    generation: int
    pid: int
    started: float
    speaks_restart: bool = False
    warm: bool = False


@dataclass(frozen=True)
class SpawnFailed(Event):
    """The :class:`Start` action could not make a process."""

    generation: int
    error: str


@dataclass(frozen=True)
class Ready(Event):
    """A generation is ready (``how``: accepting, READY=1, timer)."""

    pid: int
    how: str


@dataclass(frozen=True)
class Exited(Event):
    """A child was reaped with shell-style status ``code``; ``tail``: its last stderr lines."""

    pid: int
    code: int
    tail: tuple[str, ...] = ()


@dataclass(frozen=True)
class AppBroken(Event):
    """The running child's stderr says its app cannot load (``reason``): a compile error in
    the user's code, an import error in a changed file (see ``tracebacks.load_failure``)."""

    pid: int
    reason: str


@dataclass(frozen=True)
class Drained(Event):
    """A :class:`StepDrain` look: ``done`` once the stop signal was sent, else look again at ``next_at``."""

    pid: int
    done: bool
    next_at: float | None = None
    waited: float = 0.0


@dataclass(frozen=True)
class Shutdown(Event):
    """SIGINT or SIGTERM reached the supervisor; ``foreground``: the child shares our terminal."""

    number: int
    foreground: bool = False


@dataclass(frozen=True)
class Tick(Event):
    """Timers may be due; ``ready``: generations the readiness probes found ready."""

    ready: tuple[tuple[int, str], ...] = ()


# --- actions ------------------------------------------------------------------------------


class Action:
    """Something the loop must do."""


@dataclass(frozen=True)
class Log(Action):
    level: str  # "info", "debug" or "warn"
    text: str


@dataclass(frozen=True)
class Start(Action):
    """Spawn ``generation``; answer with :class:`Spawned` or :class:`SpawnFailed`."""

    generation: int
    changed: tuple[str, ...] = ()
    restart: bool = False  # not the first start: re-read the env files
    beside: int | None = None  # pid of the live generation to start beside (own sockets)
    cold: bool = False  # not from the warm parent (its warm start failed before it was ready)


@dataclass(frozen=True)
class Fail(Action):
    """Give up: the start failed where no change can come (re-raise the spawn error)."""


@dataclass(frozen=True)
class Stop(Action):
    """Begin stopping ``pid``: forget its readiness; with ``drain``, move its addresses away
    and look (:class:`StepDrain`) before ``number`` is sent; else send ``number`` now (None:
    send nothing, the terminal's Ctrl+C reached it)."""

    pid: int
    number: int | None
    drain: bool = False


@dataclass(frozen=True)
class StepDrain(Action):
    """One look of ``pid``'s drain; answer with :class:`Drained`."""

    pid: int


@dataclass(frozen=True)
class DrainNow(Action):
    """Send the drain's signal at once (a shutdown waits for no request)."""

    pid: int


@dataclass(frozen=True)
class Signal(Action):
    pid: int
    number: int


@dataclass(frozen=True)
class KillTree(Action):
    pid: int


@dataclass(frozen=True)
class SwitchTo(Action):
    """New connections go to ``pid``'s sockets from now on."""

    pid: int


@dataclass(frozen=True)
class PagesReady(Action):
    """Browsers may reload: ``generation`` serves."""

    generation: int


@dataclass(frozen=True)
class PagesDown(Action):
    """Show the error page: the child exited with ``code`` (tail of stderr), or could not start."""

    code: int | None
    tail: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class RestoreTerminal(Action):
    """No child runs: put the terminal back as we found it."""


@dataclass(frozen=True)
class LookAhead(Action):
    """A burst of changes began, and a start follows its end: what that start checks that
    does not depend on which files the burst names may be checked now, while it settles."""


@dataclass(frozen=True)
class WarmFailed(Action):
    """``generation`` failed warm and then served cold: drop the warm parent (it is rebuilt
    without what it imported first); with ``off``, warm is off for the session."""

    generation: int
    off: str | None = None


@dataclass(frozen=True)
class Finish(Action):
    """The supervisor is done: exit with ``code``."""

    code: int
